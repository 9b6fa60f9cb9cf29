/**
 * The pages the e-mailed links open by default (src/mail/links.ts): /verify-email,
 * /reset-password and /confirm-email-change, each plain HTML and the one script of
 * ./script.ts, which posts the token from the URL to the public API routes (body tokens, no
 * cookie, so CSRF does not apply). The HTML never contains anything from the request, so unknown
 * query parameters change nothing. A team that links to its own front end (EMAIL_VERIFY_URL …)
 * leaves these pages unused; they stay harmless. Their headers are LINK_PAGES_HEADERS.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { LINK_PAGES_HEADERS } from '../../plugins/external/security-headers.js';
import { LINK_PAGES_SCRIPT } from './script.js';

export const LINK_PAGES_SCRIPT_PATH = '/assets/flokie-links.js';

interface LinkPage {
  path: string;
  title: string;
  body: string;
}

const RESET_FORM = `
    <form id="reset-form" method="post" hidden>
      <p><label for="new-password">New password</label><br>
        <input id="new-password" name="new_password" type="password" autocomplete="new-password"
          required maxlength="1024"></p>
      <p><label for="confirm-password">New password again</label><br>
        <input id="confirm-password" name="confirm_password" type="password" autocomplete="new-password"
          required maxlength="1024"></p>
      <p><button id="submit" type="submit">Set the new password</button></p>
    </form>`;

export const LINK_PAGES: readonly LinkPage[] = [
  { path: '/verify-email', title: 'Verify your e-mail address', body: '' },
  { path: '/reset-password', title: 'Reset your password', body: RESET_FORM },
  { path: '/confirm-email-change', title: 'Confirm your new e-mail address', body: '' },
];

function html(page: LinkPage): string {
  // The script is referenced relative to the page, so a PUBLIC_URL with a path prefix works too.
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="robots" content="noindex, nofollow">
    <title>${page.title} · Flokie</title>
    <script src="${LINK_PAGES_SCRIPT_PATH.slice(1)}" defer></script>
  </head>
  <body>
    <main id="flokie-link" data-kind="${page.path.slice(1)}" data-state="loading">
      <h1>${page.title}</h1>
      <p id="status" role="status" aria-live="polite">This page needs JavaScript to complete the link.</p>
      <ul id="details"></ul>${page.body}
    </main>
  </body>
</html>
`;
}

function send(reply: FastifyReply, contentType: string, body: string) {
  return reply.headers(LINK_PAGES_HEADERS).type(contentType).send(body);
}

export default async function linkPageRoutes(app: FastifyInstance) {
  // GET routes answer HEAD as well (Fastify's exposeHeadRoutes); every other method is a 404.
  // Only the emergency limit applies to these constant answers (src/plugins/app/rate-limit.ts decides).
  for (const page of LINK_PAGES) {
    const text = html(page);
    app.get(page.path, { schema: { hide: true } }, (_request, reply) => send(reply, 'text/html; charset=utf-8', text));
  }
  app.get(LINK_PAGES_SCRIPT_PATH, { schema: { hide: true } }, (_request, reply) =>
    send(reply, 'text/javascript; charset=utf-8', LINK_PAGES_SCRIPT),
  );
}
