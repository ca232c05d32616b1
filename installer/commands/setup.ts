/**
 * `eyewear-gateway setup`: the technician's guided first run (installer/setup/run-setup.ts), or
 * the same steps from flags for a scripted install. The factory takes the command list lazily so
 * setup can run `enrol`, `install` and `doctor` by name without importing them.
 */
import type { CliCommand } from '../../cli/command.ts';
import { runSetup, type SetupDeps } from '../setup/run-setup.ts';
import { SETUP_OPTIONS } from '../setup/setup-flags.ts';

export const SETUP_HELP = `eyewear-gateway setup — first-run setup for the field technician

Usage:
  eyewear-gateway setup [--out FILE] [--force]
      Guided, on plain terminal lines (works over SSH and in a Windows console). Enter takes the
      [default]; passwords are not echoed; Ctrl-C stops, with nothing written before step 4.
  eyewear-gateway setup --non-interactive --source KIND ... [flags below]
      The same steps from flags, for scripted installs.

Steps (each printed as "step k/7: ..."):
  1 detect     what answers on this machine's usual HL7 (2575) and database ports — hints only
  2 sources    hl7 (the MLLP listener), db, folder, sftp, fhir
  3 test       each connection, as the gateway will use it (db: connect + db check; fhir: fhir check;
               sftp: login with the pinned host key + list; folder: read/write; hl7: the port is free).
               A failure says what failed and what to do; interactively: re-enter, skip or keep it
  4 config     validated with the gateway's loader, written atomically, loaded back. An existing
               file is replaced only with --force (or your yes), and kept as FILE.<time>.bak.
               Secrets (database and SFTP passwords, keys) never go in the YAML: each is written to
               <dataDir>/credentials/<source>.<field> (mode 0600) and referenced as \${file:...}
  5 enrol      runs \`enrol CODE --cloud URL [--ca FILE] --config FILE\` when a code is given
  6 install    runs \`install --config FILE\` when --install is given (or you agree)
  7 doctor     runs \`doctor --config FILE\` (skip with --no-doctor)
  The config is written before enrolment because enrol, install and doctor read it.

Flags:
  --out FILE                 config file (default /etc/eyewear-gateway/config.yaml;
                             Windows C:\\ProgramData\\eyewear-gateway\\config.yaml)
  --force                    replace an existing config (a backup is kept)
  --data-dir DIR             the gateway's data folder (default /var/lib/eyewear-gateway)
  --gateway-id ID --tenant ID --practice ID   identity (default gw-local, local, local)
  --source KIND              hl7 | db | folder | sftp | fhir; repeatable. The k-th --source KIND
                             takes the k-th of that kind's flags:
    hl7:    --hl7-port N (2575)  --hl7-host ADDR (0.0.0.0)  --hl7-profile NAME (generic)
    db:     --db-url URL         postgres://USER@HOST:PORT/DB[?schema=ps], mariadb://…, mssql://…,
                                 sqlite:/path/file.db (read with the Practice Studio profile)
            --db-password-env VAR   the password, from this environment variable
    folder: --folder PATH        --folder-profile NAME (optical-csv)
    sftp:   --sftp-url sftp://USER@HOST:PORT/remote/dir  --sftp-host-key SHA256:... (required)
            --sftp-key-file FILE | --sftp-password-env VAR   --sftp-profile NAME (optical-csv)
    fhir:   --fhir-url URL  --fhir-client-id ID  --fhir-vendor NAME (generic)
            --fhir-resources Patient,Appointment,VisionPrescription
  --keep-failed              write the config even though a source failed its test (said loudly)
  --enrol-code CODE --cloud URL [--cloud-ca FILE]   enrol at step 5 (--cloud-ca: the CA of a
                             private cloud TLS certificate)
  --install                  install the service at step 6
  --no-doctor                skip step 7

Exit codes: 0 done · 1 a step failed or the config exists · 2 usage · 3 the config would be invalid`;

export function createSetupCommand(deps: SetupDeps): CliCommand {
  return {
    name: 'setup',
    synopsis: 'setup [--non-interactive ...]',
    summary:
      "The technician's first run: detect, choose and test sources, write the\nconfig (no secret in it), enrol, install, doctor (setup --help).",
    help: SETUP_HELP,
    options: SETUP_OPTIONS,
    run: (args, io) => runSetup(args, io, deps),
  };
}
