/** Runs once before all tests: makes sure the real services exist (or fails saying what to install). */
import { ensureService } from './services.ts';

export default function setup(): void {
  ensureService('mosquitto');
  ensureService('openssl');
}
