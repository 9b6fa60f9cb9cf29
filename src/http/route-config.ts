/** Per-route options the app's own plugins read from `config` in a route definition. */
declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Which RATE_LIMITS key applies to this route ("auth.login", …). Unset: the "default" limit.
     * Only src/plugins/app/rate-limit.ts sets false (its list of exempt routes).
     */
    rateLimit?: string | false;
  }
}
export {};
