import { ERROR_CATALOGUE, type ErrorCode } from '../../src/system/errors.js';
import type { BadRequest } from './agent-requests.js';

/**
 * What is wrong with the agent's answer to a bad request, or null when it is right: a status the
 * request's kind of wrong may get, a catalogued code whose status is that one, and a message that
 * names the field (when the request knows which) and says more than that.
 */
export function answerProblem(req: BadRequest, answer: { status: number; body: string }): string | null {
  const what = `${req.role} ${req.method} ${req.url.slice(0, 120)} (${req.why})`;
  if (!req.statuses.includes(answer.status)) return `${what}: status ${answer.status}, expected ${req.statuses.join(' or ')}: ${answer.body.slice(0, 300)}`;
  let body: { code?: unknown; message?: unknown };
  try {
    body = JSON.parse(answer.body) as typeof body;
  } catch {
    return `${what}: the answer is not JSON: ${answer.body.slice(0, 200)}`;
  }
  const code = body.code;
  if (typeof code !== 'string' || !(code in ERROR_CATALOGUE)) return `${what}: ${JSON.stringify(code)} is not a catalogued code`;
  if (ERROR_CATALOGUE[code as ErrorCode].status !== answer.status) return `${what}: ${code} is catalogued as ${ERROR_CATALOGUE[code as ErrorCode].status}, answered ${answer.status}`;
  const message = body.message;
  if (typeof message !== 'string' || message.length < 12) return `${what}: no message worth the name: ${JSON.stringify(message)}`;
  if (/undefined|\[object Object\]|NaN/.test(message)) return `${what}: the message shows a program's value, not the request's: ${message}`;
  if (req.field !== null && answer.status === 400) {
    const escaped = JSON.stringify(req.field).slice(1, -1);
    if (!message.includes(req.field) && !message.includes(escaped)) return `${what}: the message does not name "${req.field}": ${message}`;
  }
  return null;
}
