/**
 * A parsed JSON response body as the tests read it. Each test's assertions check the shape they rely on
 * (docs/api.md is the contract), so property access on it is left unchecked, in this one place only.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the assertions that read it are its type check
export type ResponseBody = any;
