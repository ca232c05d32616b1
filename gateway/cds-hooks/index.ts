/**
 * The CDS Hooks 2.0 service (issue 15): discovery, `patient-view` and `appointment-book` cards from
 * a sealed local read model of the records the gateway commits, behind the EHR's signed JWT.
 * Imported by the composition root only when `cdsHooks.enabled`.
 */
export { createCdsHooksService, READ_MODEL_FILE, type CdsHooksService, type CdsHooksStatus } from './cds-service.ts';
export { CDS_SERVICES, Hook } from './discovery.ts';
export { RefusalReason, CDS_ALGORITHMS } from './token-verifier.ts';
