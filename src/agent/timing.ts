import type { FastifyRequest } from 'fastify';

/**
 * Where an agent's time went on a request, for its Server-Timing header: `agent` is the whole,
 * `request` the reading and checking of the body before the handler ran, `receive` the part of
 * it spent waiting for the body to arrive, and a route adds a phase per step it times
 * (`snapshot`, `tools`, `judge`), and `serialize` is the writing of the answer as JSON. A benchmark
 * prints them apart.
 */
interface Timed {
  brickStart?: number;
  brickSerialize?: number;
  brickBodyWait?: number;
  brickPhases?: Array<[string, number]>;
}

export function startTiming(req: FastifyRequest): void {
  (req as unknown as Timed).brickStart = performance.now();
}

/** The body is about to be read off the socket (fastify's preParsing). */
export function markBodyWait(req: FastifyRequest): void {
  (req as unknown as Timed).brickBodyWait = performance.now();
}

/**
 * The whole body has arrived (called as the JSON parser starts): the time since markBodyWait is
 * the `receive` phase, which is the network's (the client sends its body after the headers, and
 * under TCG the second packet can come a millisecond later) more than the agent's.
 */
export function markBodyReceived(req: FastifyRequest): void {
  const wait = (req as unknown as Timed).brickBodyWait;
  if (wait !== undefined) recordPhase(req, 'receive', performance.now() - wait);
}

/** The time from the request's start to now, as the `request` phase (called as the handler starts). */
export function markHandlerStart(req: FastifyRequest): void {
  const t = req as unknown as Timed;
  if (t.brickStart !== undefined) recordPhase(req, 'request', performance.now() - t.brickStart);
}

/** The handler's answer is about to be turned into JSON (fastify's preSerialization). */
export function markSerializeStart(req: FastifyRequest): void {
  (req as unknown as Timed).brickSerialize = performance.now();
}

/** Runs one step of a handler and keeps its time under `name`. */
export async function phase<T>(req: FastifyRequest, name: string, step: () => T | Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await step();
  } finally {
    recordPhase(req, name, performance.now() - t0);
  }
}

/** Keeps a step's time measured by the caller under `name` (when the name depends on the outcome). */
export function recordPhase(req: FastifyRequest, name: string, ms: number): void {
  ((req as unknown as Timed).brickPhases ??= []).push([name, ms]);
}

/** The Server-Timing header's value: "agent;dur=12.3, request;dur=1.0, snapshot;dur=8.1", or null before the request started. */
export function serverTiming(req: FastifyRequest): string | null {
  const t = req as unknown as Timed;
  if (t.brickStart === undefined) return null;
  const now = performance.now();
  // Called as the answer is sent: the time since preSerialization is the JSON writing.
  if (t.brickSerialize !== undefined) recordPhase(req, 'serialize', now - t.brickSerialize);
  return [['agent', now - t.brickStart] as [string, number], ...(t.brickPhases ?? [])].map(([n, ms]) => `${n};dur=${ms.toFixed(1)}`).join(', ');
}
