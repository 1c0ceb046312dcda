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

  const { $, ShownError, BRAND_NAMES, api, announce, clearError, showError, appearance } = window.PageKit;
  const loadScript = (url) => window.PageKit.loadScript(url, state.text.formLoadFailed);
  const setBusy = (name, busy, message) => { state.busy = busy; window.PageKit.setBusy(name, busy, message); };
  /**
   * Stripe.js objects typed by @stripe/stripe-js, so that CI checks every call on them.
   * @type {{config: any, stripe: import('@stripe/stripe-js').Stripe | null,
   *   elements: import('@stripe/stripe-js').StripeElements | null, customer: any, busy: boolean,
   *   text: any, locale: import('@stripe/stripe-js').StripeElementLocale}}
   */
  const state = {
    config: null, stripe: null, elements: null, customer: null, busy: false,
    text: window.PageText.en.checkout, locale: 'en'
  };

  // The page in one language: its words from that catalogue, <html lang>, and the switch.
  function useLanguage(locale) {
    state.locale = window.PageText[locale] ? locale : 'en';
    state.text = window.PageText[state.locale].checkout;
    document.documentElement.lang = state.locale;
    document.title = state.text.pageTitle;
    window.PageKit.applyText(state.text);
    window.PageKit.languageSwitch(state.locale);
  }

  // Our server's messages are English; in another language show our own words instead.
  function serverWords(message, fallback) {
    return state.locale === 'en' && message ? message : fallback;
  }

  // ------------------------------------------------------------------ talking to our server

  function messageOf(answer, fallback) {
    if (answer.status === 0) return state.text.network;
    return serverWords(answer.data && answer.data.error && answer.data.error.message, fallback);
  }

  // ------------------------------------------------------------------ page state helpers

  // Bank redirect methods whose set-up leaves a SEPA Direct Debit method behind.
  const ORIGIN_NAMES = { ideal: 'iDEAL', bancontact: 'Bancontact' };

  function showStep(id) {
    for (const step of ['signup-step', 'payment-step', 'success-step']) $(step).hidden = step !== id;
    $('loading').hidden = true;
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

  function describeMethod(method) {
    const text = state.text;
    if (!method) return text.someMethod;
    if (method.type === 'sepa_debit' && method.generated_from) {
      return text.generatedSepa(method.last4, ORIGIN_NAMES[method.generated_from] || method.generated_from);
    }
    if (method.type === 'sepa_debit') return text.sepa(method.last4);
    const brand = BRAND_NAMES[method.brand] || text.card;
    const expiry = method.exp_month && method.exp_year
      ? text.expires(String(method.exp_month).padStart(2, '0'), String(method.exp_year).slice(-2))
      : '';
    return text.cardEnding(brand, method.last4, expiry);
  }

  // ------------------------------------------------------------------ CAPTCHA on sign-up

  // The challenge the server asks for (/config names it); its token goes with the sign-up.
  // Turnstile and hCaptcha share the calls used here; the sandbox's stand-in is a checkbox
  // that yields the one token the sandbox verifier accepts.
  const SANDBOX_CAPTCHA_TOKEN = 'sandbox-captcha-pass';
  const captcha = {
    widget: null,
    api: null,
    async mount(config) {
      if (!config) return;
      $('captcha-field').hidden = false;
      if (config.provider === 'sandbox') {
        const label = document.createElement('label');
        label.className = 'checkbox';
        const box = document.createElement('input');
        box.type = 'checkbox';
        box.id = 'sandbox-captcha';
        label.append(box, state.text.captchaBox);
        $('signup-captcha').append(label);
        this.api = {
          getResponse: () => (box.checked ? SANDBOX_CAPTCHA_TOKEN : ''),
          reset: () => { box.checked = false; }
        };
        return;
      }
      await loadExternal(config.scriptUrl);
      this.api = config.provider === 'turnstile' ? window.turnstile : window.hcaptcha;
      this.widget = this.api.render($('signup-captcha'), { sitekey: config.siteKey });
    },
    token() { return this.api ? this.api.getResponse(this.widget) || '' : undefined; },
    reset() { if (this.api) this.api.reset(this.widget); }
  };

  function loadExternal(url) {
    return new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = url;
      script.async = true;
      script.addEventListener('load', () => resolve());
      script.addEventListener('error', () => reject(new ShownError(state.text.captchaFailed)));
      document.head.appendChild(script);
    });
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
    setFieldError('captcha', '');
    const email = $('signup-email').value.trim();
    const name = $('signup-name').value.trim();
    if (!email || !name) {
      if (!name) setFieldError('name', state.text.enterName);
      if (!email) setFieldError('email', state.text.enterEmail);
      $(email ? 'signup-name' : 'signup-email').focus();
      return;
    }
    setBusy('signup', true, state.text.signingUp);
    const answer = await api('POST', '/customers', {
      email, name, locale: state.locale, captchaToken: captcha.token()
    });
    setBusy('signup', false);
    if (!answer.ok) {
      captcha.reset();  // a token is good for one try
      const error = answer.data && answer.data.error;
      if (error && error.field && setFieldError(error.field, serverWords(error.message, state.text.signUpFailed))) {
        $('signup-' + error.field).focus();
      } else {
        showError('signup-error', messageOf(answer, state.text.signUpFailed));
      }
      return;
    }
    showPayment(answer.data);
  }

  // ------------------------------------------------------------------ payment step

  function mountElements() {
    const { stripe, config, customer } = state;
    state.elements = stripe.elements({ mode: 'setup', currency: config.currency, appearance: appearance(), locale: state.locale });
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
    if (created.error) throw new ShownError(serverWords(created.error.message, state.text.notSaved));

    const answer = await api('POST', '/create-confirm-intent', { confirmationTokenId: created.confirmationToken.id });
    if (answer.status === 401) {
      showSignup(state.text.sessionEnded);
      return null;
    }
    if (!answer.ok) throw new ShownError(messageOf(answer, state.text.notSaved));

    if (answer.data.status === 'requires_action') {
      announce(state.text.waitingForBank);
      const handled = await stripe.handleNextAction({ clientSecret: answer.data.client_secret });
      if (handled.error) throw new ShownError(serverWords(handled.error.message, state.text.bankFailed));
    }
    return answer.data.setup_intent;
  }

  async function showOutcome(setupIntentId) {
    const answer = await api('GET', `/setup-intents/${encodeURIComponent(setupIntentId)}`);
    if (!answer.ok) throw new ShownError(messageOf(answer, state.text.checkFailed));
    const { status, payment_method: method, error } = answer.data;
    if (status === 'succeeded' || status === 'processing') {
      const description = describeMethod(method);
      $('success-message').textContent = status === 'succeeded'
        ? state.text.saved(description)
        : state.text.savedPending(description);
      showStep('success-step');
      $('success-title').focus();
      return;
    }
    throw new ShownError(serverWords(error && error.message, state.text.tryAnother));
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
      showError('payment-error', serverWords(submitted.error.message, state.text.generic));
      return;
    }
    setBusy('payment', true, state.text.saving);
    try {
      const setupIntentId = await confirmSetup();
      if (setupIntentId) await showOutcome(setupIntentId);
    } catch (error) {
      showError('payment-error', error instanceof ShownError ? error.message : state.text.generic);
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
      if (!config.ok) throw new ShownError(state.text.loadFailed);
      state.config = config.data;
      useLanguage(config.data.locale);
      $('merchant-name').textContent = config.data.merchantName;
      $('sandbox-notice').hidden = !config.data.sandbox;
      await captcha.mount(config.data.captcha);
      const [, me] = await Promise.all([loadScript(config.data.stripeJsUrl), api('GET', '/customers/me')]);
      state.stripe = window.Stripe(config.data.publishableKey, { locale: state.locale });
      const params = new URLSearchParams(location.search);
      if (me.ok && params.get('setup_intent')) await resumeAfterRedirect(params, me.data);
      else if (me.ok) showPayment(me.data);
      else showSignup();
    } catch (error) {
      $('loading').textContent = error instanceof ShownError ? error.message : state.text.loadFailed;
      $('loading').classList.add('form-error');
    }
  }

  start();
})();
