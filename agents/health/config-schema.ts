/**
 * The `agents.health` config section: whether the health monitor runs, how often it looks, when a
 * symptom becomes a finding, and the budget of each remedy it may apply by itself.
 */
import { Type } from '@sinclair/typebox';

const MIN = 60_000;
const ms = (def: number, minimum: number, description: string) => Type.Integer({ minimum, default: def, description });
const section = <T extends Parameters<typeof Type.Object>[0]>(props: T, description: string) =>
  Type.Object(props, { additionalProperties: false, default: {}, description });

export const healthAgentSchema = section(
  {
    enabled: Type.Boolean({
      default: true,
      description:
        'Run the health monitor (agents/health/): it samples the data disk, memory, CPU and the clock, the sources, the outbox and the sink (and its device certificate) every `pollMs`, names causes from its catalogue (docs/AGENTS.md), restarts a failing source within its budget, and shows its findings in `/status` and `GET /agents/health`.',
    }),
    pollMs: ms(
      30_000,
      1000,
      'How often it samples (one statfs of the data folder and the components’ own health: microseconds of CPU a sample).',
    ),
    historySize: Type.Integer({
      minimum: 1,
      maximum: 1000,
      default: 50,
      description: 'Remedies kept in its local history (oldest dropped first).',
    }),
    disk: section(
      {
        windowMs: ms(2 * 3600_000, MIN, 'The free-space samples the trend is drawn from (least squares over this window).'),
        minSpanMs: ms(10 * MIN, MIN, 'The samples must span at least this long before any prediction is made.'),
        warnHours: Type.Number({
          minimum: 0,
          default: 24,
          description: 'Predicted to reach the reserve within this many hours: a warning.',
        }),
        errorHours: Type.Number({ minimum: 0, default: 6, description: 'Within this many hours: an error.' }),
      },
      'AGENT_HEALTH_DISK_FILLING: the data disk’s free space and its trend.',
    ),
    silence: section(
      {
        sources: Type.Array(Type.String({ minLength: 1 }), {
          default: ['hl7v2'],
          description:
            'The sources watched for silence, by id: feeds that push (the MLLP listener `hl7v2`). A polled source is quiet whenever the PMS has no changes, so it is not watched unless listed.',
        }),
        lookbackMs: ms(6 * 3600_000, MIN, 'The arrivals the usual rhythm is learned from (the median gap between them).'),
        minGaps: Type.Integer({ minimum: 2, default: 5, description: 'Gaps needed before a rhythm is claimed at all.' }),
        factor: Type.Number({ minimum: 1, default: 4, description: 'Silent when quiet for this many usual gaps…' }),
        minSilenceMs: ms(15 * MIN, MIN, '…and for at least this long.'),
      },
      'AGENT_HEALTH_SOURCE_SILENT: a source quiet against its usual rhythm.',
    ),
    source: section(
      {
        failingAfterMs: ms(2 * MIN, 0, 'A source down this long (its own retries having failed) is a finding, and a restart is tried.'),
        restartsPerHour: Type.Integer({
          minimum: 0,
          default: 3,
          description: 'Restarts of one source the monitor may make in any hour (0: none, it only reports).',
        }),
        backoffInitialMs: ms(5 * MIN, 0, 'Wait after a restart that did not help before the next one; doubled each time.'),
        backoffMaxMs: ms(60 * MIN, 0, 'Longest wait between two restarts of one source.'),
      },
      'AGENT_HEALTH_SOURCE_FAILING: a source that fails to start or whose reads fail, and its bounded restarts.',
    ),
    outbox: section(
      {
        writerRestartsPerHour: Type.Integer({
          minimum: 1,
          default: 3,
          description:
            'The outbox writer thread restarted this many times within an hour is a finding (each restart alone is handled by the outbox).',
        }),
        stuckAfterMs: ms(
          15 * MIN,
          MIN,
          'The same record the oldest undelivered one for this long (monotonic time) while the sink is connected is a finding (an error past four times it).',
        ),
      },
      'AGENT_HEALTH_OUTBOX_WRITER_UNSTABLE (the writer thread keeps dying) and AGENT_HEALTH_OUTBOX_STUCK (records wait though the sink is connected).',
    ),
    sink: section(
      {
        downAfterMs: ms(10 * MIN, 0, 'The sink disconnected this long is a finding (what a person must do, from its error code).'),
      },
      'AGENT_HEALTH_SINK_DOWN: the cloud link.',
    ),
    throttle: section(
      {
        perHour: Type.Integer({
          minimum: 1,
          default: 10,
          description: 'A source answered 429 this many times within an hour is a finding (and a longer poll interval is proposed).',
        }),
      },
      'AGENT_HEALTH_SOURCE_THROTTLED: a FHIR or vendor API server limiting the gateway.',
    ),
    certificate: section(
      {
        warnDays: Type.Number({
          minimum: 0,
          default: 14,
          description: 'The device certificate expiring within this many days while not yet renewed: a warning.',
        }),
        errorDays: Type.Number({ minimum: 0, default: 3, description: 'Within this many days: an error.' }),
        overdueMs: ms(24 * 3600_000, 0, 'Its renewal (due at 2/3 of its lifetime) this long overdue is a warning whatever the days left.'),
      },
      'AGENT_HEALTH_CERT_EXPIRING: the enrolled device certificate (MQTT sink).',
    ),
    clock: section(
      {
        jumpMs: ms(60_000, 1000, 'The wall clock moving this much more (or less) than the monotonic clock between two polls is a jump.'),
        showForMs: ms(60 * MIN, MIN, 'How long a jump stays a finding (monotonic time after the last one).'),
      },
      'AGENT_HEALTH_CLOCK_JUMPED: the system clock set forward or back.',
    ),
    memory: section(
      {
        rssWarnMiB: Type.Integer({
          minimum: 16,
          default: 512,
          description: 'The gateway’s resident memory (all its threads) above this many MiB is a warning.',
        }),
        hostFreeWarnPercent: Type.Number({
          minimum: 0,
          maximum: 100,
          default: 5,
          description: 'The PC’s available memory below this share of its total is a warning.',
        }),
        sustainPolls: Type.Integer({ minimum: 1, default: 5, description: 'Polls in a row over a threshold before it is a finding.' }),
      },
      'AGENT_HEALTH_MEMORY_HIGH: the gateway’s memory and the PC’s.',
    ),
    cpu: section(
      {
        gatewayWarnPercent: Type.Number({
          minimum: 1,
          default: 90,
          description: 'The gateway’s CPU time over a poll above this share of one core is a warning (sustained).',
        }),
        hostLoadPerCore: Type.Number({
          minimum: 0,
          default: 2,
          description: 'The 1-minute load average per core above this is a warning (sustained; Linux only).',
        }),
        sustainPolls: Type.Integer({ minimum: 1, default: 10, description: 'Polls in a row over a threshold before it is a finding.' }),
      },
      'AGENT_HEALTH_CPU_BUSY: the gateway’s CPU use and the PC’s load.',
    ),
  },
  'The health monitor: signals, diagnoses from a catalogue, bounded remedies (issue 17).',
);
