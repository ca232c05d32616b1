/**
 * Vendor API simulators for the API source's tests, in process on 127.0.0.1: athenahealth's
 * athenaOne REST API and DrChrono's v4 API, each from the vendor's published request and response
 * shapes (the vendor module and its profile in adapters/api/profiles/ name the documents and mark
 * the guesses), with their auth, paging, throttling and error answers, and faults a test injects
 * (429 storms, failures, tokens revoked mid-sync).
 *
 * ```ts
 * const sim = await startDrchronoSim();
 * sim.put('patients', drchronoPatient(1));
 * // apis: [{ id, profile: 'drchrono', baseUrl: sim.origin, auth: { tokenUrl: `${sim.origin}/o/token/`, … } }]
 * await sim.stop();
 * ```
 */
export * from './athenahealth.ts';
export * from './drchrono.ts';
export { type SimFaults, type SimRequest, type SimServer, instantToWall, wallToInstant } from './sim-server.ts';
