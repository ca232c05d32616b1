import { createMemoryOutbox } from '../../../gateway/outbox/memory-outbox.ts';
import { outboxContract } from './outbox-contract.ts';

outboxContract('memory', (o) => createMemoryOutbox(o));
