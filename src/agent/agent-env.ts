/** `export NAME='VALUE'` lines, as stage 2 writes the agent's environment (values hold no quote). */
export function parseAgentEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export (BRICK_[A-Z0-9_]+)='([^']*)'$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}
