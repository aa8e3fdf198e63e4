/** Every agent type this deployment knows; the API validates against these, `switchyard worker <type>` runs them. */
import { echo } from './echo.ts';
import { flaky } from './flaky.ts';
import { transform } from './transform.ts';

export { echo, flaky, transform };
export default [echo, transform, flaky];
