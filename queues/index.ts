/** Every agent type this deployment knows; the API validates against these, `switchyard agent <type>` runs them. */
import { accounts } from './accounts.ts';
import { echo } from './echo.ts';
import { etl } from './etl.ts';
import { flaky } from './flaky.ts';
import { payments } from './payments.ts';
import { sendEmail } from './send-email.ts';
import { transform } from './transform.ts';

export { accounts, echo, etl, flaky, payments, sendEmail, transform };
export default [echo, transform, flaky, etl, accounts, payments, sendEmail];
