// The canary API's shapes: what starting a canary takes (validated at the edge with field paths) and the record
// the controller keeps per service in the store (collection `canaries`), which is also what the status API shows.
import { z } from 'zod';
import type { CanaryJudgement, CanaryVerdict } from '../src/canary/judge.ts';
import { NAME_PATTERN } from './store/types.ts';

const Version = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only');

export const CanaryStage = z.strictObject({
  /** Percent of the service's traffic that goes to the new version during the stage. */
  weight: z.number().int().min(1).max(100),
  /** How long the stage is observed before the judge decides (not used by the 100% stage). */
  windowS: z.number().int().min(1).max(86_400).default(300),
});
export type CanaryStage = z.infer<typeof CanaryStage>;

/** The seed's rollout: 5, 10, 20, 50% observed for 5, 5, 10, 10 minutes, then 100%. */
export const DEFAULT_STAGES: CanaryStage[] = [
  { weight: 5, windowS: 300 },
  { weight: 10, windowS: 300 },
  { weight: 20, windowS: 600 },
  { weight: 50, windowS: 600 },
  { weight: 100, windowS: 300 },
];

/** Overrides of the judge's policy (src/canary/judge.ts DEFAULT_CANARY_POLICY); the seed's values by default. */
export const CanaryPolicyInput = z.strictObject({
  promoteMaxErrorRate: z.number().min(0).max(1).optional(),
  promoteMaxP95Ms: z.number().min(0).optional(),
  rollbackErrorRate: z.number().min(0).max(1).optional(),
  rollbackP95Ms: z.number().min(0).optional(),
  minRequestsPerVersion: z.number().int().min(1).optional(),
  confidence: z.number().gt(0).lt(1).optional(),
  minLatencyRatio: z.number().min(1).optional(),
  minErrorRateRatio: z.number().min(1).optional(),
  minErrorRateIncrease: z.number().min(0).optional(),
});

/**
 * How many times a stage's window is observed again after a hold or inconclusive verdict before the canary is
 * marked failed and rolled back: 3, so a stage takes at most 4 windows (20-40 minutes with the seed's windows,
 * under the seed's "stuck > 1 hour" alert).
 */
export const DEFAULT_MAX_EXTENSIONS = 3;

export const CanaryStart = z
  .strictObject({
    service: z.string().regex(NAME_PATTERN, 'letters, digits, . _ - only (up to 128), starting with a letter or digit'),
    from: Version,
    to: Version,
    stages: z.array(CanaryStage).min(1).max(20).default(DEFAULT_STAGES),
    autoPromote: z.boolean().default(true),
    autoRollback: z.boolean().default(true),
    maxExtensions: z.number().int().min(0).max(100).default(DEFAULT_MAX_EXTENSIONS),
    policy: CanaryPolicyInput.default({}),
  })
  .superRefine((c, ctx) => {
    if (c.from === c.to) ctx.addIssue({ code: 'custom', path: ['to'], message: 'must differ from from' });
    for (let i = 1; i < c.stages.length; i++)
      if (c.stages[i].weight <= c.stages[i - 1].weight)
        ctx.addIssue({
          code: 'custom',
          path: ['stages', i, 'weight'],
          message: `weights must rise stage by stage (${c.stages[i - 1].weight} before it)`,
        });
  });
export type CanaryStartInput = z.input<typeof CanaryStart>;

export const CANARY_STATES = ['running', 'paused', 'promoted', 'rolled_back', 'failed'] as const;
export type CanaryState = (typeof CANARY_STATES)[number];

/** One observed window of a stage (or a manual decision): what was seen and what was done. */
export interface CanaryHistoryEntry {
  readonly stage: number;
  readonly weight: number;
  readonly startedAt: string;
  readonly endedAt: string;
  /** The judge's verdict; null for a manual action that had no judgement behind it. */
  readonly verdict: CanaryVerdict | null;
  /** What followed: next stage, promoted, rolled back, the window observed again, failed, or nothing. */
  readonly action: 'promote' | 'finish' | 'rollback' | 'extend' | 'fail' | 'wait' | 'pause';
  /** `canary-controller` for the judge's decisions, else who called the API. */
  readonly decidedBy: string;
  readonly reasons: string[];
  readonly stats: CanaryJudgement['stats'] | null;
}

export interface CanaryRecord {
  readonly id: string;
  readonly service: string;
  readonly from: string;
  readonly to: string;
  readonly stages: CanaryStage[];
  readonly autoPromote: boolean;
  readonly autoRollback: boolean;
  readonly maxExtensions: number;
  readonly policy: z.infer<typeof CanaryPolicyInput>;
  state: CanaryState;
  stageIndex: number;
  /** Windows of the current stage already observed again (hold, inconclusive). */
  extensions: number;
  startedAt: string;
  /** When the current stage (or its extended window) began. */
  stageStartedAt: string;
  /** When the current window is judged; null while paused or once finished. */
  windowEndsAt: string | null;
  lastProgressAt: string;
  finishedAt: string | null;
  /** Why automatic judging cannot run (no --prometheus), or why the canary waits for a person. */
  note: string | null;
  history: CanaryHistoryEntry[];
}
