/**
 * The `agents.sync` config section: whether the sync scheduler runs, the bounds it keeps each
 * polled source's interval within, how long it learns over, and each source's load budget.
 */
import { Type } from '@sinclair/typebox';

const section = <T extends Parameters<typeof Type.Object>[0]>(props: T, description: string) =>
  Type.Object(props, { additionalProperties: false, default: {}, description });

const budgetProps = (withDefaults: boolean) => ({
  perMinute: Type.Integer({
    minimum: 0,
    ...(withDefaults ? { default: 0 } : {}),
    description:
      'Queries (databases) or calls (FHIR, APIs) a source may be sent in any minute, counted as its cycles report them (a FHIR cycle counts as one); 0: no budget.',
  }),
  perDay: Type.Integer({
    minimum: 0,
    ...(withDefaults ? { default: 0 } : {}),
    description: 'Queries or calls a source may be sent in a day (a vendor’s daily quota); 0: no budget.',
  }),
});

const budgets = Type.Object(budgetProps(true), {
  additionalProperties: false,
  default: {},
  description: 'Each source’s load budget: it caps the poll rate (the cloud link’s bytes per second are not budgeted here).',
});
const budgetsOverride = Type.Partial(
  Type.Object(budgetProps(false), {
    additionalProperties: false,
    description: 'This source’s budgets (each one given replaces the default).',
  }),
);

export const syncAgentSchema = section(
  {
    enabled: Type.Boolean({
      default: false,
      description:
        'Run the sync scheduler (agents/sync/): it learns when each polled source (databases, FHIR servers, APIs) changes, by half hour of the week, and sets their poll intervals within `minIntervalMs`–`maxIntervalMs` and their budgets; every change of schedule is logged with its reason and shown in `GET /agents/sync`. Off: every source waits its own `pollIntervalMs`.',
    }),
    minIntervalMs: Type.Integer({
      minimum: 1000,
      default: 30_000,
      description: 'The fastest a source is polled: in hours that usually see changes, and at once after a change.',
    }),
    maxIntervalMs: Type.Integer({
      minimum: 1000,
      maximum: 6 * 3600_000,
      default: 600_000,
      description: 'The slowest a source is polled: in hours that never see changes (nights, closed days).',
    }),
    learningDays: Type.Integer({
      minimum: 1,
      maximum: 90,
      default: 14,
      description:
        'What is learned fades: a half hour seen `learningDays` days ago counts half, so a changed opening time is learned within a week or two and the plan rests on the last few weeks.',
    }),
    slowdownFactor: Type.Number({
      minimum: 1.1,
      maximum: 10,
      default: 2,
      description:
        'After a change the interval drops to `minIntervalMs` at once; each quiet poll after it multiplies it by this, up to what the hour has learned.',
    }),
    historySize: Type.Integer({
      minimum: 1,
      maximum: 1000,
      default: 100,
      description: 'Schedule changes kept in its local history (oldest dropped first), with their reasons.',
    }),
    budgets,
    sources: Type.Record(
      Type.String({ minLength: 1 }),
      Type.Object(
        {
          minIntervalMs: Type.Optional(Type.Integer({ minimum: 1000, description: 'This source’s fastest interval.' })),
          maxIntervalMs: Type.Optional(
            Type.Integer({ minimum: 1000, maximum: 6 * 3600_000, description: 'This source’s slowest interval.' }),
          ),
          budgets: Type.Optional(budgetsOverride),
        },
        { additionalProperties: false },
      ),
      { default: {}, description: 'Per source, by id: bounds and budgets that replace the ones above.' },
    ),
  },
  'The sync scheduler: learned poll intervals within bounds and load budgets (issue 17 points 5, 7, 8).',
);
