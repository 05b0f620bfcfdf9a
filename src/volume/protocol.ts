/** The protocols brick-lab attaches volumes over: one list, so that a new one is added in one place. */
export const PROTOCOLS = ['iscsi', 'nvmeof', 'fc', 'local'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** The protocols a target node exports volumes over (local disks live on compute nodes). */
export const TARGET_PROTOCOLS = ['iscsi', 'nvmeof', 'fc'] as const;
export type TargetProtocol = (typeof TARGET_PROTOCOLS)[number];

export function isProtocol(v: unknown): v is Protocol {
  return typeof v === 'string' && (PROTOCOLS as readonly string[]).includes(v);
}

/** The ANA states an NVMe path (a port's group) can report, as nvmet's configfs takes them. */
export const ANA_STATES = ['optimized', 'non-optimized', 'inaccessible', 'persistent-loss', 'change'] as const;
export type AnaState = (typeof ANA_STATES)[number];
