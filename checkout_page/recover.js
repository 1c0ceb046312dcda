/*
 * The recovery page: the customer pays the PaymentIntent whose off-session charge failed.
 *
 * The token in the address names the case; everything else comes from our server with that
 * token: the case (GET /recover/{token}/case) and, only when the customer acts, the
 * PaymentIntent's client secret (POST .../payment-intent, in the response body, never in a URL).
 *   authentication_required: stripe.confirmPayment with the client secret and the saved method;
 *     Stripe.js runs 3-D Secure.
 *   payment_method_required: the Payment Element (deferred, mode 'payment', the intent's amount
 *     and currency, setupFutureUsage 'off_session') collects a new method; our server confirms the
 *     same PaymentIntent with the ConfirmationToken (POST .../confirm); next actions run here.
 * Success in the browser is not the end: the case is recovered when Stripe's
 * payment_intent.succeeded webhook reaches our server, so the page polls the case until it is.
 *
 * Loaded as a file (the Content-Security-Policy forbids inline script).
 */
(() => {
  'use strict';

  const { $, ShownError, api, announce, clearError, showError, appearance } = window.PageKit;
  const loadScript = (url) => window.PageKit.loadScript(url, state.text.loadFailed);
  const setBusy = (name, busy, message) => { state.busy = busy; window.PageKit.setBusy(name, busy, message); };
  const POLL_INTERVAL_MS = 1000;
  const POLL_LIMIT_MS = 60000;

  const TEXT = window.PageText;

  const token = decodeURIComponent(location.pathname.split('/')[2] || '');
  const base = `/recover/${encodeURIComponent(token)}`;
  /**
   * Stripe.js objects typed by @stripe/stripe-js, so that CI checks every call on them.
   * @type {{text: any, locale: import('@stripe/stripe-js').StripeElementLocale, data: any,
   *   stripe: import('@stripe/stripe-js').Stripe | null,
   *   elements: import('@stripe/stripe-js').StripeElements | null, busy: boolean}}
   */
  const state = { text: TEXT.en.recover, locale: 'en', data: null, stripe: null, elements: null, busy: false };

  // ------------------------------------------------------------------ talking to our server

  // Our server's messages are English; in another language show our own words for the case.
  function messageOf(answer, fallback) {
    if (answer.status === 0) return state.text.network;
    const message = answer.data && answer.data.error && answer.data.error.message;
    if (answer.status === 402) return state.locale === 'en' && message ? message : state.text.declined;
    return state.locale === 'en' && message && answer.status < 500 ? message : fallback;
  }

  // ------------------------------------------------------------------ page state helpers

  const STEPS = ['pay-step', 'confirming-step', 'done-step', 'closed-step', 'expired-step', 'invalid-step'];

  function showStep(id, focusId) {
    for (const step of STEPS) $(step).hidden = step !== id;
    $('loading').hidden = true;
    if (focusId) $(focusId).focus();
  }

  function useLanguage(locale) {
    state.locale = TEXT[locale] ? locale : 'en';
    state.text = TEXT[state.locale].recover;
    window.PageKit.languageSwitch(state.locale);
    document.documentElement.lang = state.locale;
    document.title = state.text.title;
    $('page-title').textContent = state.text.title;
    $('loading-text').textContent = state.text.loading;
  }

  // ------------------------------------------------------------------ states without a form

  function showClosed(data) {
    const text = state.text;
    const paid = data.state === 'recovered';
    $('closed-title').textContent = paid ? text.paidTitle : text.canceledTitle;
    $('closed-message').textContent = paid ? text.paidMessage(data.amountDisplay) : text.canceledMessage;
    showStep('closed-step', 'closed-title');
  }

  function showExpired() {
    $('expired-title').textContent = state.text.expiredTitle;
    $('expired-message').textContent = state.text.expiredMessage;
    $('fresh-label').textContent = state.text.freshButton;
    showStep('expired-step', 'expired-title');
  }

  function showInvalid() {
    $('invalid-title').textContent = state.text.invalidTitle;
    $('invalid-message').textContent = state.text.invalidMessage;
    showStep('invalid-step', 'invalid-title');
  }

  function showDone(title, message) {
    $('done-title').textContent = title;
    $('done-message').textContent = message;
    showStep('done-step', 'done-title');
  }

  async function requestFreshLink() {
    if (state.busy) return;
    clearError('fresh-error');
    setBusy('fresh', true, state.text.freshButton);
    const answer = await api('POST', `${base}/fresh-link`, {});
    setBusy('fresh', false);
    if (answer.ok) {
      $('fresh-sent').textContent = state.text.freshSent(answer.data.sentTo);
      $('fresh-sent').hidden = false;
      $('fresh-submit').hidden = true;
    } else if (answer.status === 429) {
      $('fresh-sent').textContent = state.text.freshLimited;
      $('fresh-sent').hidden = false;
      $('fresh-submit').hidden = true;
    } else if (answer.status === 409 && answer.data && answer.data.error) {
      showClosed({ state: answer.data.error.state, amountDisplay: state.data.amountDisplay });
    } else {
      showError('fresh-error', messageOf(answer, state.text.generic));
    }
  }

  // ------------------------------------------------------------------ after the browser paid

  // The case closes when Stripe's webhook reaches our server: wait for that, not for the browser.
  async function waitForRecovery(intentStatus) {
    const text = state.text;
    $('confirming-text').textContent = text.confirming;
    showStep('confirming-step');
    announce(text.confirming);
    const deadline = Date.now() + POLL_LIMIT_MS;
    while (Date.now() < deadline) {
      const answer = await api('GET', `${base}/case`);
      if (answer.data && answer.data.state === 'recovered') {
        showDone(text.doneTitle, text.doneMessage(answer.data.amountDisplay));
        return;
      }
      if (answer.data && answer.data.state === 'canceled') {
        showClosed(answer.data);
        return;
      }
      if (intentStatus === 'processing') break;
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    }
    if (intentStatus === 'processing') showDone(text.processingTitle, text.processingMessage);
    else showDone(text.doneTitle, text.slowMessage);
  }

  // What Stripe.js answered after a confirmation or a next action.
  async function settle(result) {
    if (result.error) {
      const intent = result.error.payment_intent;
      if (intent && (intent.status === 'succeeded' || intent.status === 'processing')) {
        await waitForRecovery(intent.status);
        return;
      }
      const code = result.error.code;
      const bankFailed = code === 'payment_intent_authentication_failure' || result.error.type === 'invalid_request_error';
      throw new ShownError(bankFailed ? state.text.bankFailed
        : (state.locale === 'en' && result.error.message) || state.text.declined);
    }
    const status = result.paymentIntent && result.paymentIntent.status;
    if (status === 'succeeded' || status === 'processing') {
      await waitForRecovery(status);
      return;
    }
    throw new ShownError(state.text.generic);
  }

  // After a failure the webhook may have changed what the case needs: show its current form.
  async function refreshCase() {
    const answer = await api('GET', `${base}/case`);
    if (!answer.data) return;
    if (answer.data.state !== 'open') { showClosed(answer.data); return; }
    if (answer.status === 410) { showExpired(); return; }
    state.data = answer.data;
    if (answer.data.kind !== 'authentication_required' && !$('saved-form').hidden) showNewMethodForm();
  }

  // ------------------------------------------------------------------ authentication_required

  async function submitSaved(event) {
    event.preventDefault();
    if (state.busy) return;
    clearError('saved-error');
    setBusy('saved', true, state.text.waitingForBank);
    try {
      const answer = await api('POST', `${base}/payment-intent`, {});
      if (answer.status === 409 || answer.status === 410) { await refreshCase(); return; }
      if (!answer.ok) throw new ShownError(messageOf(answer, state.text.generic));
      const intent = answer.data;
      if (intent.status === 'succeeded' || intent.status === 'processing') {
        await waitForRecovery(intent.status);
        return;
      }
      if (!intent.clientSecret) throw new ShownError(state.text.generic);
      if (intent.status === 'requires_action') {
        // An earlier attempt stopped at the bank's challenge (a closed tab): pick it up there.
        await settle(await state.stripe.handleNextAction({ clientSecret: intent.clientSecret }));
        return;
      }
      if (!intent.paymentMethod) throw new ShownError(state.text.generic);
      const result = await state.stripe.confirmPayment({
        clientSecret: intent.clientSecret,
        confirmParams: { payment_method: intent.paymentMethod, return_url: state.data.returnUrl },
        redirect: 'if_required'
      });
      await settle(result);
    } catch (error) {
      showError('saved-error', error instanceof ShownError ? error.message : state.text.generic);
      if (!(error instanceof ShownError)) console.error(error);
      await refreshCase();
    } finally {
      setBusy('saved', false);
    }
  }

  function showSavedMethodForm() {
    const { data, text } = state;
    $('saved-method').textContent = text.savedMethod(text.method(data.paymentMethod));
    $('saved-label').textContent = text.confirmButton(data.amountDisplay);
    $('use-new-method').textContent = text.useNew;
    $('saved-form').hidden = false;
    $('new-form').hidden = true;
  }

  // ------------------------------------------------------------------ payment_method_required

  function showNewMethodForm() {
    const { data, text } = state;
    $('new-label').textContent = text.payButton(data.amountDisplay);
    $('new-note').textContent = text.newNote;
    $('saved-form').hidden = true;
    $('new-form').hidden = false;
    if (state.elements) return;
    state.elements = state.stripe.elements({
      mode: 'payment',
      amount: data.amount,
      currency: data.currency,
      setupFutureUsage: 'off_session',
      locale: state.locale,
      appearance: appearance()
    });
    const payment = state.elements.create('payment', { layout: 'tabs', business: { name: data.merchantName } });
    payment.on('ready', () => { $('new-submit').disabled = false; });
    payment.on('change', () => clearError('new-error'));
    payment.mount('#payment-element');
  }

  async function payWithNewMethod() {
    const { stripe, elements, data } = state;
    const created = await stripe.createConfirmationToken({ elements, params: { return_url: data.returnUrl } });
    if (created.error) throw new ShownError((state.locale === 'en' && created.error.message) || state.text.generic);
    const answer = await api('POST', `${base}/confirm`, { confirmationTokenId: created.confirmationToken.id });
    if (answer.status === 409 || answer.status === 410) { await refreshCase(); return; }
    if (!answer.ok) throw new ShownError(messageOf(answer, state.text.generic));
    if (answer.data.status === 'requires_action') {
      announce(state.text.waitingForBank);
      await settle(await stripe.handleNextAction({ clientSecret: answer.data.clientSecret }));
      return;
    }
    await settle({ paymentIntent: { status: answer.data.status } });
  }

  async function submitNew(event) {
    event.preventDefault();
    if (state.busy) return;
    clearError('new-error');
    // Validate first, while the fields can still take focus: the Element marks the bad one.
    state.busy = true;
    const submitted = await state.elements.submit();
    state.busy = false;
    if (submitted.error) {
      showError('new-error', (state.locale === 'en' && submitted.error.message) || state.text.generic);
      return;
    }
    setBusy('new', true, state.text.paying);
    try {
      await payWithNewMethod();
    } catch (error) {
      showError('new-error', error instanceof ShownError ? error.message : state.text.generic);
      if (!(error instanceof ShownError)) console.error(error);
    } finally {
      setBusy('new', false);
    }
  }

  // ------------------------------------------------------------------ start

  function showPayment(data) {
    const text = state.text;
    $('amount-due').textContent = text.amountDue(data.amountDisplay);
    const reason = text.reasons[data.declineCode] || text.reasons.other;
    $('pay-reason').textContent = data.kind === 'authentication_required' ? text.reasonAuth : text.reasonNew(reason);
    if (data.kind === 'authentication_required' && data.paymentMethod) showSavedMethodForm();
    else showNewMethodForm();
    showStep('pay-step', 'amount-due');
  }

  async function start() {
    $('saved-form').addEventListener('submit', submitSaved);
    $('new-form').addEventListener('submit', submitNew);
    $('use-new-method').addEventListener('click', () => { showNewMethodForm(); $('new-submit').focus(); });
    $('fresh-submit').addEventListener('click', requestFreshLink);
    // Returning from a redirect-based method: Stripe appends the intent and its client secret;
    // take them out of the address bar and history at once.
    const returned = new URLSearchParams(location.search).get('redirect_status');
    if (location.search) history.replaceState(null, '', location.pathname);
    useLanguage((navigator.language || 'en').slice(0, 2));
    try {
      const answer = await api('GET', `${base}/case`);
      if (answer.status === 404) { showInvalid(); return; }
      if (!answer.data || !answer.data.state) throw new ShownError(state.text.loadFailed);
      const data = answer.data;
      state.data = data;
      useLanguage(data.locale);
      $('merchant-name').textContent = data.merchantName;
      $('sandbox-notice').textContent = state.text.sandbox;
      $('sandbox-notice').hidden = !data.sandbox;
      if (data.state !== 'open') { showClosed(data); return; }
      if (answer.status === 410) { showExpired(); return; }
      await loadScript(data.stripeJsUrl);
      state.stripe = window.Stripe(data.publishableKey, { locale: state.locale });
      if (returned === 'succeeded' || returned === 'processing') { await waitForRecovery(returned); return; }
      showPayment(data);
    } catch (error) {
      $('loading-text').textContent = error instanceof ShownError ? error.message : state.text.loadFailed;
      $('loading').classList.add('form-error');
      if (!(error instanceof ShownError)) console.error(error);
    }
  }

  start();
})();
