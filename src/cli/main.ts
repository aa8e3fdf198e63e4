/** The `switchyard` command: runs the program of program.ts and turns its errors into exit codes. */
import { isSwitchyardError } from '../model/errors.ts';
import { buildProgram } from './program.ts';

buildProgram().parseAsync().catch((err: unknown) => {
  process.stderr.write(`switchyard: ${isSwitchyardError(err) ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(isSwitchyardError(err) && err.code === 'CONFIG_INVALID' ? 2 : 1);
});
