/*
 * The save-a-method page: sign up, then Stripe's Payment and Address Elements in deferred
 * setup mode. On submit: elements.submit(), stripe.createConfirmationToken, POST the token id
 * to /create-confirm-intent (the server creates and confirms the SetupIntent), run
 * stripe.handleNextAction when the bank wants 3-D Secure, then show the saved method as our
 * server recorded it (GET /setup-intents/{id}).
 *
 * Loaded as a file (the Content-Security-Policy forbids inline script); Stripe.js comes from
 * the URL /config names, which is Stripe itself or the sandbox's stand-in.
 */
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const state = { config: null, stripe: null, elements: null, customer: null, busy: false };

  const BRAND_NAMES = {
    amex: 'American Express', diners: 'Diners Club', discover: 'Discover', jcb: 'JCB',
    mastercard: 'Mastercard', unionpay: 'UnionPay', visa: 'Visa', cartes_bancaires: 'Cartes Bancaires'
  };

  // An error whose message is meant for the person using the page.
  class ShownError extends Error {}

  // ------------------------------------------------------------------ talking to our server

  async function api(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
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

  function messageOf(answer, fallback) {
    if (answer.status === 0) return 'We could not reach our server. Check your connection and try again.';
    return (answer.data && answer.data.error && answer.data.error.message) || fallback;
  }

  function loadScript(url) {
    return new Promise((resolve, reject) => {
      if (window.Stripe) { resolve(); return; }
      const script = document.createElement('script');
      script.src = url;
      script.async = true;
      script.addEventListener('load', () => resolve());
      script.addEventListener('error', () => reject(new ShownError('The payment form could not load. Reload the page to try again.')));
      document.head.appendChild(script);
    });
  }

  // ------------------------------------------------------------------ page state helpers

  function showStep(id) {
    for (const step of ['signup-step', 'payment-step', 'success-step']) $(step).hidden = step !== id;
    $('loading').hidden = true;
  }

  function announce(text) {
    $('busy-status').textContent = text;
  }

  function setBusy(formName, busy, message) {
    state.busy = busy;
    const button = $(formName + '-submit');
    $(formName + '-fields').disabled = busy;
    button.setAttribute('aria-busy', busy ? 'true' : 'false');
    $(formName + '-form').setAttribute('aria-busy', busy ? 'true' : 'false');
    announce(busy ? message : '');
    // Disabling the fieldset drops focus; give it back to the button so keyboard users stay put.
    if (!busy && (!document.activeElement || document.activeElement === document.body)) button.focus();
  }

  function showError(id, message) {
    const box = $(id);
    box.textContent = message;
    box.hidden = false;
  }

  function clearError(id) {
    const box = $(id);
    box.textContent = '';
    box.hidden = true;
  }

  function setFieldError(name, message) {
    const input = $('signup-' + name);
    const error = $('signup-' + name + '-error');
    if (!input || !error) return false;
    error.textContent = message || '';
    error.hidden = !message;
    if (message) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
    return true;
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

  function describeMethod(method) {
    if (!method) return 'Your payment method';
    if (method.type === 'sepa_debit') return `Bank account (SEPA Direct Debit) ending in ${method.last4}`;
    const brand = BRAND_NAMES[method.brand] || 'Card';
    const expiry = method.exp_month && method.exp_year
      ? ` (expires ${String(method.exp_month).padStart(2, '0')}/${String(method.exp_year).slice(-2)})`
      : '';
    return `${brand} ending in ${method.last4}${expiry}`;
  }

  // ------------------------------------------------------------------ sign-up step

  function showSignup(message) {
    $('signup-email').value = state.customer ? state.customer.email : $('signup-email').value;
    showStep('signup-step');
    if (message) showError('signup-error', message);
    $('signup-email').focus();
  }

  async function submitSignup(event) {
    event.preventDefault();
    if (state.busy) return;
    clearError('signup-error');
    setFieldError('email', '');
    setFieldError('name', '');
    const email = $('signup-email').value.trim();
    const name = $('signup-name').value.trim();
    if (!email || !name) {
      if (!name) setFieldError('name', 'Enter your name.');
      if (!email) setFieldError('email', 'Enter your email address.');
      $(email ? 'signup-name' : 'signup-email').focus();
      return;
    }
    setBusy('signup', true, 'Signing you up…');
    const answer = await api('POST', '/customers', { email, name, locale: navigator.language || undefined });
    setBusy('signup', false);
    if (!answer.ok) {
      const error = answer.data && answer.data.error;
      if (error && error.field && setFieldError(error.field, error.message)) {
        $('signup-' + error.field).focus();
      } else {
        showError('signup-error', messageOf(answer, 'We could not sign you up. Please try again.'));
      }
      return;
    }
    showPayment(answer.data);
  }

  // ------------------------------------------------------------------ payment step

  function mountElements() {
    const { stripe, config, customer } = state;
    state.elements = stripe.elements({ mode: 'setup', currency: config.currency, appearance: appearance() });
    const payment = state.elements.create('payment', {
      layout: 'tabs',
      business: { name: config.merchantName },
      defaultValues: { billingDetails: { name: customer.name, email: customer.email } }
    });
    const address = state.elements.create('address', { mode: 'billing', defaultValues: { name: customer.name } });
    payment.on('ready', () => { $('payment-submit').disabled = false; });
    payment.on('change', () => clearError('payment-error'));
    address.on('change', () => clearError('payment-error'));
    payment.mount('#payment-element');
    address.mount('#address-element');
  }

  function showPayment(customer) {
    state.customer = customer;
    $('customer-email').textContent = customer.email;
    if (!state.elements) mountElements();
    showStep('payment-step');
    $('payment-title').setAttribute('tabindex', '-1');
    $('payment-title').focus();
  }

  async function confirmSetup() {
    const { stripe, elements, customer } = state;
    const created = await stripe.createConfirmationToken({
      elements,
      params: {
        payment_method_data: { billing_details: { email: customer.email } },
        return_url: `${location.origin}/`
      }
    });
    if (created.error) throw new ShownError(created.error.message);

    const answer = await api('POST', '/create-confirm-intent', { confirmationTokenId: created.confirmationToken.id });
    if (answer.status === 401) {
      showSignup('Your session has ended. Please enter your details again.');
      return null;
    }
    if (!answer.ok) throw new ShownError(messageOf(answer, 'Your payment method could not be saved. Please try again.'));

    if (answer.data.status === 'requires_action') {
      announce('Waiting for your bank to confirm…');
      const handled = await stripe.handleNextAction({ clientSecret: answer.data.client_secret });
      if (handled.error) throw new ShownError(handled.error.message || 'Your bank could not confirm this payment method.');
    }
    return answer.data.setup_intent;
  }

  async function showOutcome(setupIntentId) {
    const answer = await api('GET', `/setup-intents/${encodeURIComponent(setupIntentId)}`);
    if (!answer.ok) throw new ShownError(messageOf(answer, 'We could not check your payment method. Please reload the page.'));
    const { status, payment_method: method, error } = answer.data;
    if (status === 'succeeded' || status === 'processing') {
      const description = describeMethod(method);
      $('success-message').textContent = status === 'succeeded'
        ? `${description} is saved.`
        : `${description} is saved and is being confirmed with your bank.`;
      showStep('success-step');
      $('success-title').focus();
      return;
    }
    throw new ShownError((error && error.message) || 'Your payment method could not be saved. Please try another one.');
  }

  async function submitPayment(event) {
    event.preventDefault();
    if (state.busy) return;
    clearError('payment-error');
    // Validate first, while the fields can still take focus: the Element marks the bad one.
    state.busy = true;
    const submitted = await state.elements.submit();
    state.busy = false;
    if (submitted.error) {
      showError('payment-error', submitted.error.message);
      return;
    }
    setBusy('payment', true, 'Saving your payment method…');
    try {
      const setupIntentId = await confirmSetup();
      if (setupIntentId) await showOutcome(setupIntentId);
    } catch (error) {
      showError('payment-error', error instanceof ShownError ? error.message : 'Something went wrong. Please try again.');
      if (!(error instanceof ShownError)) console.error(error);
    } finally {
      setBusy('payment', false);
    }
  }

  // Coming back from a redirect-based method (return_url): show how it ended.
  async function resumeAfterRedirect(params, customer) {
    const setupIntentId = params.get('setup_intent');
    history.replaceState(null, '', location.pathname);
    showPayment(customer);
    try {
      await showOutcome(setupIntentId);
    } catch (error) {
      showError('payment-error', error.message);
    }
  }

  // ------------------------------------------------------------------ start

  async function start() {
    $('signup-form').addEventListener('submit', submitSignup);
    $('payment-form').addEventListener('submit', submitPayment);
    $('change-customer').addEventListener('click', () => showSignup());
    $('save-another').addEventListener('click', () => location.assign('/'));
    try {
      const config = await api('GET', '/config');
      if (!config.ok) throw new ShownError('This page could not load. Please reload it.');
      state.config = config.data;
      $('merchant-name').textContent = config.data.merchantName;
      $('sandbox-notice').hidden = !config.data.sandbox;
      const [, me] = await Promise.all([loadScript(config.data.stripeJsUrl), api('GET', '/customers/me')]);
      state.stripe = window.Stripe(config.data.publishableKey);
      const params = new URLSearchParams(location.search);
      if (me.ok && params.get('setup_intent')) await resumeAfterRedirect(params, me.data);
      else if (me.ok) showPayment(me.data);
      else showSignup();
    } catch (error) {
      $('loading').textContent = error instanceof ShownError ? error.message : 'This page could not load. Please reload it.';
      $('loading').classList.add('form-error');
    }
  }

  start();
})();
