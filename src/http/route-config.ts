/** Per-route options the app's own plugins read from `config` in a route definition. */
declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Which RATE_LIMITS key applies to this route ("auth.login", …); false exempts it from the
     * default limit (health checks). Unset: the "default" limit.
     */
    rateLimit?: string | false;
  }
}
export {};
