/**
 * Kernel module ordering for the initramfs, from the modules.dep that depmod wrote for the guest
 * kernel. Pure: text in, ordered list out.
 */
export type ModuleDeps = Map<string, { path: string; deps: string[] }>;

/** Module name as the kernel spells it: file name without .ko(.xz|.zst|.gz), dashes as underscores. */
export function moduleName(path: string): string {
  const base = path.split('/').pop() ?? path;
  return base.replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

export function parseModulesDep(text: string): ModuleDeps {
  const out: ModuleDeps = new Map();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    if (!path) continue;
    const deps = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    out.set(moduleName(path), { path, deps });
  }
  return out;
}

/**
 * The files to load, dependencies first, each once. A wanted module that is not in modules.dep is
 * an error (built in modules appear in modules.builtin instead and are skipped by the caller).
 */
export function loadOrder(deps: ModuleDeps, wanted: readonly string[], builtin: ReadonlySet<string> = new Set()): string[] {
  const byPath = new Map<string, string>();
  for (const [name, m] of deps) byPath.set(m.path, name);
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string, chain: string[]): void => {
    if (seen.has(name)) return;
    const m = deps.get(name);
    if (!m) {
      if (builtin.has(name)) return;
      throw new Error(`kernel module ${name} is not in modules.dep (wanted by ${chain.join(' -> ') || 'the recipe'})`);
    }
    seen.add(name);
    for (const d of m.deps) visit(byPath.get(d) ?? moduleName(d), [...chain, name]);
    order.push(m.path);
  };
  for (const w of wanted) visit(moduleName(w), []);
  return order;
}

export function parseBuiltin(text: string): Set<string> {
  return new Set(
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .map(moduleName),
  );
}
