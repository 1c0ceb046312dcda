/*
 * What the save-a-method page and the recovery page share: JSON calls to our own server,
 * loading Stripe.js, the busy/error states of a form, card brand names, and the Elements'
 * appearance taken from the page's CSS custom properties. Loaded before each page's own
 * script, as a file (the Content-Security-Policy forbids inline script).
 */
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);

  // Card brands as Stripe names them, as a person would read them.
  const BRAND_NAMES = Object.freeze({
    amex: 'American Express', diners: 'Diners Club', discover: 'Discover', jcb: 'JCB',
    mastercard: 'Mastercard', unionpay: 'UnionPay', visa: 'Visa', cartes_bancaires: 'Cartes Bancaires'
  });

  // An error whose message is meant for the person using the page.
  class ShownError extends Error {}

  // Our server answers JSON; a network failure or a non-JSON body becomes `data: null`.
  async function api(method, path, body) {
    /** @type {RequestInit & {headers: Record<string, string>}} */
    const init = { method, credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (_networkError) {
      return { ok: false, status: 0, data: null };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_notJson) {
      data = null;
    }
    return { ok: response.ok, status: response.status, data };
  }

  function loadScript(url, failureMessage) {
    return new Promise((resolve, reject) => {
      if (window.Stripe) { resolve(); return; }
      const script = document.createElement('script');
      script.src = url;
      script.async = true;
      script.addEventListener('load', () => resolve());
      script.addEventListener('error', () => reject(new ShownError(failureMessage)));
      document.head.appendChild(script);
    });
  }

  function announce(text) {
    $('busy-status').textContent = text;
  }

  // Disable the form `name` (its fieldset, or just its button) while a request is in flight.
  function setBusy(name, busy, message) {
    const button = /** @type {HTMLButtonElement} */ ($(name + '-submit'));
    const fields = /** @type {HTMLFieldSetElement | null} */ ($(name + '-fields'));
    const form = $(name + '-form');
    if (fields) fields.disabled = busy;
    else button.disabled = busy;
    button.setAttribute('aria-busy', busy ? 'true' : 'false');
    if (form) form.setAttribute('aria-busy', busy ? 'true' : 'false');
    announce(busy ? message : '');
    // Disabling the fieldset drops focus; give it back to the button so keyboard users stay put.
    if (!busy && (!document.activeElement || document.activeElement === document.body)) button.focus();
  }

  function showError(id, message) {
    $(id).textContent = message;
    $(id).hidden = false;
  }

  function clearError(id) {
    $(id).textContent = '';
    $(id).hidden = true;
  }

  function cssVariable(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  // The Elements take their look from the page's own CSS custom properties.
  function appearance() {
    return {
      theme: 'stripe',
      variables: {
        colorPrimary: cssVariable('--color-primary', '#3d4eac'),
        colorBackground: cssVariable('--color-surface', '#ffffff'),
        colorText: cssVariable('--color-text', '#1f2430'),
        colorTextSecondary: cssVariable('--color-muted', '#5b6170'),
        colorDanger: cssVariable('--color-danger', '#b3261e'),
        fontFamily: cssVariable('--font-family', 'system-ui, sans-serif'),
        borderRadius: cssVariable('--radius', '8px'),
        spacingUnit: '4px'
      }
    };
  }

  // The language switch: one button per catalogue (i18n/*.js). The choice is a cookie the
  // server reads before Accept-Language and the stored locale; the page reloads in it.
  const LANGUAGE_COOKIE = 'lang';
  function languageSwitch(current) {
    const nav = $('language-switch');
    if (!nav) return;
    nav.replaceChildren();
    for (const [code, catalogue] of Object.entries(window.PageText || {})) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'link-button';
      button.lang = code;
      button.textContent = catalogue.label;
      if (code === current) button.setAttribute('aria-current', 'true');
      button.addEventListener('click', () => {
        if (code === current) return;
        document.cookie = `${LANGUAGE_COOKIE}=${code}; Path=/; Max-Age=31536000; SameSite=Lax`;
        location.reload();
      });
      nav.append(button);
    }
  }

  // Static words of a page: each `data-i18n` element takes its text from the catalogue.
  function applyText(text) {
    document.querySelectorAll('[data-i18n]').forEach((node) => {
      const value = text[/** @type {HTMLElement} */ (node).dataset.i18n];
      if (typeof value === 'string') node.textContent = value;
    });
  }

  window.PageKit = Object.freeze({
    $, ShownError, BRAND_NAMES, api, loadScript, announce, setBusy, showError, clearError, appearance,
    languageSwitch, applyText
  });
})();
