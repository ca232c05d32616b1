/**
 * The API source's vendor profiles, by the name `apis[].profile` gives. A profile is data: where
 * the API is, how it is entered, how fast it may be called, and its entities with their records
 * (each profile's file says which published documents shaped it, and marks its guesses).
 */
import type { ApiProfileName } from '../../../config/api-schema.ts';
import type { ApiProfile } from '../api-types.ts';
import { athenahealthProfile } from './athenahealth.ts';
import { drchronoProfile } from './drchrono.ts';

/** Any JSON API: everything comes from the config entry. */
export const genericProfile: ApiProfile = {
  label: 'generic JSON API',
  system: 'API',
  auth: { kind: 'none' },
  rateLimit: {},
  pageSize: 100,
  variables: [],
  notes: [],
  entities: [],
};

export const API_PROFILES: Record<ApiProfileName, ApiProfile> = {
  generic: genericProfile,
  athenahealth: athenahealthProfile,
  drchrono: drchronoProfile,
};
