/**
 * The one script of the link pages (served as /assets/flokie-links.js; the pages allow no inline
 * script). It takes the token out of the address bar before anything else, so it stays out of the
 * history, bookmarks and screenshots, posts it to the API and writes the outcome with textContent
 * only: nothing from the URL or the server is ever parsed as HTML.
 */
export const LINK_PAGES_SCRIPT = String.raw`'use strict';
(function () {
  var main = document.getElementById('flokie-link');
  var status = document.getElementById('status');
  var details = document.getElementById('details');
  var form = document.getElementById('reset-form');
  if (!main || !status || !details) return;
  var kind = main.getAttribute('data-kind');

  var params = new URLSearchParams(window.location.search);
  var token = params.get('token') || '';
  // Before anything else: no token in the address bar, the history or a later Referer.
  if (window.location.search || window.location.hash) {
    window.history.replaceState(null, '', window.location.pathname);
  }

  function show(state, message, lines) {
    main.setAttribute('data-state', state);
    status.textContent = message;
    while (details.firstChild) details.removeChild(details.firstChild);
    (lines || []).forEach(function (line) {
      var item = document.createElement('li');
      item.textContent = line;
      details.appendChild(item);
    });
  }

  /** Every message of a validation error's details, field by field. */
  function detailLines(error) {
    var lines = [];
    if (!error || !error.details || typeof error.details !== 'object') return lines;
    Object.keys(error.details).forEach(function (field) {
      var messages = error.details[field];
      if (!Array.isArray(messages)) return;
      messages.forEach(function (message) {
        if (typeof message === 'string') lines.push(message);
      });
    });
    return lines.slice(0, 20);
  }

  function post(path, body) {
    var url = new URL(path, document.baseURI);
    return fetch(url.href, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    }).then(function (response) {
      return response.json().then(
        function (payload) { return { status: response.status, payload: payload }; },
        function () { return { status: response.status, payload: null }; }
      );
    });
  }

  function report(result, successMessage) {
    var payload = result.payload || {};
    if (result.status >= 200 && result.status < 300 && payload.success === true) {
      show('success', successMessage, payload.message ? [payload.message] : []);
      return true;
    }
    var error = payload.error || {};
    var message = typeof error.message === 'string'
      ? error.message
      : 'The server refused the request (HTTP ' + result.status + ').';
    show('error', message, detailLines(error));
    return false;
  }

  function unreachable() {
    show('error', 'The server could not be reached. Check your connection and open the link again.');
  }

  if (!token) {
    if (form) form.hidden = true;
    show('error', 'This link has no token. Open the link from the e-mail again, exactly as it was sent; ' +
      'a link works once.');
    return;
  }

  if (kind === 'verify-email' || kind === 'confirm-email-change') {
    var path = kind === 'verify-email' ? 'api/auth/verify-email' : 'api/auth/email/confirm';
    var done = kind === 'verify-email'
      ? 'Your e-mail address is verified.'
      : 'Your new e-mail address is confirmed. Please log in again.';
    show('pending', 'Checking the link…');
    post(path, { token: token }).then(function (result) { report(result, done); }, unreachable);
    return;
  }

  if (kind === 'reset-password' && form) {
    var first = document.getElementById('new-password');
    var second = document.getElementById('confirm-password');
    var button = document.getElementById('submit');
    form.hidden = false;
    show('ready', 'Choose a new password and type it twice.');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (button.disabled) return;
      if (first.value !== second.value) {
        show('error', 'The two passwords do not match.');
        return;
      }
      if (!first.value) {
        show('error', 'Type a new password.');
        return;
      }
      button.disabled = true;
      show('pending', 'Setting the new password…');
      post('api/auth/password/reset', { token: token, new_password: first.value, confirm_password: second.value }).then(
        function (result) {
          if (report(result, 'Your password has been reset. Log in with the new password.')) {
            form.hidden = true;
            first.value = '';
            second.value = '';
          } else {
            button.disabled = false;
          }
        },
        function () {
          button.disabled = false;
          unreachable();
        }
      );
    });
  }
})();
`;
