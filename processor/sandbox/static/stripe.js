/*
 * Stripe.js stand-in for the offline sandbox.
 *
 * Implements the part of Stripe.js v3 our pages use, with the same names, options and result
 * shapes: Stripe(pk), stripe.elements(...), the Payment and Address Elements, elements.submit(),
 * createConfirmationToken, handleNextAction, confirmPayment, confirmSetup, retrieveSetupIntent
 * and retrievePaymentIntent. Results are promises of {error} or {confirmationToken} /
 * {setupIntent} / {paymentIntent}; API errors never throw.
 *
 * It talks to the sandbox API the way Stripe.js talks to Stripe: form-encoded requests with the
 * publishable key and, for intents, their client secret. The API base is where this script was
 * loaded from, minus "/v3/stripe.js". Elements render in the page's own DOM (no iframes), are
 * plainly labelled as the sandbox, and style themselves from stripe.css beside this file and
 * from the appearance variables (set through the CSSOM, so a strict CSP needs nothing inline).
 */
(function () {
  'use strict';

  var SCRIPT_URL = (function () {
    if (document.currentScript && document.currentScript.src) return document.currentScript.src;
    var scripts = document.querySelectorAll('script[src*="/v3/stripe.js"]');
    return scripts.length ? scripts[scripts.length - 1].src : location.origin + '/v3/stripe.js';
  })();
  var API_BASE = SCRIPT_URL.replace(/\/v3\/stripe\.js(?:[?#].*)?$/, '');
  var STYLESHEET_URL = new URL('stripe.css', SCRIPT_URL).href;
  var CHALLENGE_TITLE = '3D Secure authentication';

  var TEST_CARDS = [
    { number: '4242424242424242', label: 'Visa 4242', hint: 'succeeds' },
    { number: '4000002500003155', label: 'Visa 3155', hint: '3D Secure when saved' },
    { number: '4000002760003184', label: 'Visa 3184', hint: '3D Secure always; later charges need it too' },
    { number: '4000000000000002', label: 'Visa 0002', hint: 'declined' },
    { number: '4000000000009995', label: 'Visa 9995', hint: 'declined: insufficient funds' },
    { number: '4000000000000341', label: 'Visa 0341', hint: 'saves; later charges fail' },
    { number: '4000008260003178', label: 'Visa 3178', hint: '3D Secure; later charges: insufficient funds' }
  ];
  var TEST_IBANS = [
    { iban: 'DE89370400440532013000', label: 'DE89 …3000', hint: 'debits succeed' },
    { iban: 'DE62370400440532013001', label: 'DE62 …3001', hint: 'debits fail' }
  ];
  // Bank redirect methods the Payment Element offers for EUR in setup mode; each leaves a
  // reusable SEPA Direct Debit method behind after the customer authorizes at the bank.
  var BANK_METHODS = [['ideal', 'iDEAL'], ['bancontact', 'Bancontact']];
  var IDEAL_BANKS = [
    ['', 'Select bank'], ['abn_amro', 'ABN AMRO'], ['asn_bank', 'ASN Bank'], ['bunq', 'bunq'],
    ['ing', 'ING'], ['knab', 'Knab'], ['rabobank', 'Rabobank'], ['regiobank', 'RegioBank'],
    ['revolut', 'Revolut'], ['sns_bank', 'SNS Bank'], ['triodos_bank', 'Triodos Bank'],
    ['van_lanschot', 'Van Lanschot']
  ];
  // The Elements' words in Japanese, for `locale: 'ja'` (as Stripe's Elements localise).
  var ENGLISH_TEMPLATES = {
    'mandate:sepa': 'By saving your bank details you authorise {merchant} and Stripe to send instructions ' +
      'to your bank to debit your account. (Sandbox: no bank is contacted.)',
    'mandate:bank': 'You will be redirected to your bank to authorize. By continuing you authorise {merchant} ' +
      'and Stripe to debit your account by SEPA Direct Debit for future payments. (Sandbox: no bank is contacted.)'
  };
  var JA_WORDS = {
    'Stripe sandbox · test payment methods only, nothing is charged': 'Stripe サンドボックス · テスト用のお支払い方法のみ、請求は発生しません',
    'Payment method': 'お支払い方法',
    'Card': 'カード',
    'SEPA Direct Debit': 'SEPA ダイレクトデビット',
    'Card number': 'カード番号',
    'Expiration date (MM / YY)': '有効期限 (月 / 年)',
    'Security code (CVC)': 'セキュリティコード (CVC)',
    'Test cards': 'テスト用カード',
    'IBAN': 'IBAN',
    'Test bank accounts': 'テスト用口座',
    'Full name': '氏名',
    'Email': 'メールアドレス',
    'Bank': '銀行',
    'Country or region': '国または地域',
    'Address line 1': '住所 1',
    'Address line 2 (optional)': '住所 2 (任意)',
    'City': '市区町村',
    'Postal code': '郵便番号',
    'mandate:sepa': '口座情報を登録すると、{merchant} と Stripe が口座からの引き落としを銀行に指示することを承認したことになります。（サンドボックス：銀行には接続しません）',
    'mandate:bank': '認証のため銀行のページに移動します。続行すると、{merchant} と Stripe が今後のお支払いを SEPA ダイレクトデビットで口座から引き落とすことを承認したことになります。（サンドボックス：銀行には接続しません）',
    'Your full name is incomplete.': '氏名が入力されていません。',
    'Your email is incomplete.': 'メールアドレスが正しくありません。',
    'Select your bank.': '銀行を選択してください。',
    'Your IBAN is incomplete.': 'IBAN が不完全です。',
    'Your IBAN is invalid.': 'IBAN が無効です。',
    'Your card number is incomplete.': 'カード番号が不完全です。',
    'Your card number is invalid.': 'カード番号が無効です。',
    "Your card's expiration date is incomplete.": '有効期限が不完全です。',
    "Your card's expiration month is invalid.": '有効期限の月が無効です。',
    "Your card's expiration year is in the past.": '有効期限が過ぎています。',
    "Your card's security code is incomplete.": 'セキュリティコードが不完全です。'
  };
  var COUNTRIES = [
    ['US', 'United States'], ['GB', 'United Kingdom'], ['DE', 'Germany'], ['FR', 'France'],
    ['NL', 'Netherlands'], ['BE', 'Belgium'], ['AT', 'Austria'], ['IE', 'Ireland'],
    ['ES', 'Spain'], ['IT', 'Italy'], ['JP', 'Japan'], ['CA', 'Canada'], ['AU', 'Australia']
  ];
  // Appearance variables the stand-in honours, and the CSS custom property each one sets.
  var APPEARANCE_VARIABLES = {
    colorPrimary: '--sbx-primary',
    colorBackground: '--sbx-background',
    colorText: '--sbx-text',
    colorTextSecondary: '--sbx-text-secondary',
    colorDanger: '--sbx-danger',
    fontFamily: '--sbx-font-family',
    fontSizeBase: '--sbx-font-size',
    borderRadius: '--sbx-radius',
    spacingUnit: '--sbx-spacing',
    focusBoxShadow: '--sbx-focus-shadow'
  };

  var nextUid = 1;
  function uid(prefix) { return 'sbx-' + prefix + '-' + nextUid++; }

  // ---------------------------------------------------------------- small DOM helpers

  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      var value = attributes[name];
      if (value === false || value === null || value === undefined) return;
      if (name === 'text') node.textContent = value;
      else if (name === 'className') node.className = value;
      else node.setAttribute(name, value === true ? '' : String(value));
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }

  function ensureStylesheet() {
    if (document.querySelector('link[data-sbx-stylesheet]')) return;
    document.head.appendChild(el('link', {
      rel: 'stylesheet', href: STYLESHEET_URL, 'data-sbx-stylesheet': true
    }));
  }

  function resolveTarget(target) {
    var node = typeof target === 'string' ? document.querySelector(target) : target;
    if (!node || !node.appendChild) {
      throw integrationError('Invalid DOM element or selector passed to mount(): ' + target);
    }
    return node;
  }

  function integrationError(message) {
    var error = new Error(message);
    error.name = 'IntegrationError';
    return error;
  }

  function applyAppearance(root, appearance) {
    var variables = (appearance && appearance.variables) || {};
    Object.keys(APPEARANCE_VARIABLES).forEach(function (name) {
      if (variables[name]) root.style.setProperty(APPEARANCE_VARIABLES[name], String(variables[name]));
    });
    root.classList.toggle('sbx-theme-night', !!(appearance && appearance.theme === 'night'));
  }

  // ---------------------------------------------------------------- API transport

  function encodeForm(params) {
    var pairs = [];
    (function walk(prefix, value) {
      if (value === undefined || value === null) return;
      if (Array.isArray(value)) {
        value.forEach(function (item, index) { walk(prefix + '[' + index + ']', item); });
      } else if (typeof value === 'object') {
        Object.keys(value).forEach(function (key) {
          walk(prefix ? prefix + '[' + key + ']' : key, value[key]);
        });
      } else {
        pairs.push(encodeURIComponent(prefix) + '=' + encodeURIComponent(String(value)));
      }
    })('', params);
    return pairs.join('&');
  }

  function connectionError() {
    return {
      type: 'api_connection_error',
      message: 'We could not reach the payment service. Check your connection and try again.'
    };
  }

  function request(key, method, path, params) {
    var url = API_BASE + path;
    var init = {
      method: method,
      headers: { Authorization: 'Bearer ' + key, Accept: 'application/json' },
      credentials: 'omit'
    };
    if (method === 'GET') {
      var query = encodeForm(params || {});
      if (query) url += (url.indexOf('?') === -1 ? '?' : '&') + query;
    } else {
      init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
      init.body = encodeForm(params || {});
    }
    return fetch(url, init).then(function (response) {
      return response.json().then(function (body) {
        if (response.ok) return { body: body };
        return { error: (body && body.error) || { type: 'api_error', message: 'Unexpected answer.' } };
      }, function () {
        return { error: { type: 'api_error', message: 'The payment service answered HTTP ' + response.status + '.' } };
      });
    }, function () {
      return { error: connectionError() };
    });
  }

  function parseClientSecret(clientSecret) {
    var text = typeof clientSecret === 'string' ? clientSecret : '';
    var match = /^((seti|pi)_[A-Za-z0-9]+)_secret_[A-Za-z0-9]+$/.exec(text);
    if (!match) return null;
    var setup = match[2] === 'seti';
    return {
      id: match[1],
      clientSecret: text,
      path: setup ? '/v1/setup_intents/' : '/v1/payment_intents/',
      resultKey: setup ? 'setupIntent' : 'paymentIntent',
      errorKey: setup ? 'setup_intent' : 'payment_intent',
      lastErrorKey: setup ? 'last_setup_error' : 'last_payment_error',
      noun: setup ? 'SetupIntent' : 'PaymentIntent'
    };
  }

  function invalidSecretError(clientSecret) {
    return {
      type: 'invalid_request_error',
      code: 'invalid_client_secret',
      message: 'Invalid value for clientSecret: ' + JSON.stringify(clientSecret) + '.'
    };
  }

  // ---------------------------------------------------------------- 3-D Secure challenge

  function runChallenge(appearance) {
    ensureStylesheet();
    return new Promise(function (resolve) {
      var titleId = uid('challenge-title');
      var textId = uid('challenge-text');
      var complete = el('button', { type: 'button', className: 'sbx-button sbx-button-primary', text: 'Complete' });
      var fail = el('button', { type: 'button', className: 'sbx-button', text: 'Fail' });
      var dialog = el('dialog', {
        className: 'sbx-dialog', 'aria-labelledby': titleId, 'aria-describedby': textId
      }, [
        el('p', { className: 'sbx-badge', text: 'Stripe sandbox · test bank' }),
        el('h2', { id: titleId, className: 'sbx-dialog-title', text: CHALLENGE_TITLE }),
        el('p', {
          id: textId,
          text: 'Your bank asks you to confirm this payment method. This is a test: choose ' +
            'Complete to approve it or Fail to refuse it.'
        }),
        el('div', { className: 'sbx-dialog-actions' }, [complete, fail])
      ]);
      applyAppearance(dialog, appearance);
      var previousFocus = document.activeElement;
      var settled = false;
      function finish(outcome) {
        if (settled) return;
        settled = true;
        complete.disabled = true;
        fail.disabled = true;
        if (dialog.open) dialog.close();
        dialog.remove();
        if (previousFocus && previousFocus.focus && document.contains(previousFocus)) previousFocus.focus();
        resolve(outcome);
      }
      complete.addEventListener('click', function () { finish('complete'); });
      fail.addEventListener('click', function () { finish('fail'); });
      // Closing a real challenge (Escape) abandons it, which the bank treats as a failure.
      dialog.addEventListener('cancel', function (event) { event.preventDefault(); finish('fail'); });
      document.body.appendChild(dialog);
      dialog.showModal();
      complete.focus();
    });
  }

  // ---------------------------------------------------------------- Elements

  function BaseElement(group, type, options) {
    this._group = group;
    this._type = type;
    this._options = options || {};
    this._handlers = {};
    this._root = null;
    this._mounted = false;
    this._lastState = null;
  }

  // A translator for this element's words, in the locale of its Elements group.
  BaseElement.prototype._t = function () {
    var words = this._group._locale() === 'ja' ? JA_WORDS : {};
    return function (text) { return words[text] || ENGLISH_TEMPLATES[text] || text; };
  };

  BaseElement.prototype.on = function (event, handler) {
    (this._handlers[event] = this._handlers[event] || []).push(handler);
    if (event === 'ready' && this._ready) {
      var self = this;
      setTimeout(function () { handler({ elementType: self._type }); }, 0);
    }
    return this;
  };
  BaseElement.prototype.addEventListener = BaseElement.prototype.on;
  BaseElement.prototype.once = function (event, handler) {
    var self = this;
    function wrapper(payload) { self.off(event, wrapper); handler(payload); }
    return this.on(event, wrapper);
  };
  BaseElement.prototype.off = function (event, handler) {
    var list = this._handlers[event] || [];
    this._handlers[event] = handler ? list.filter(function (h) { return h !== handler; }) : [];
    return this;
  };
  BaseElement.prototype._emit = function (event, payload) {
    (this._handlers[event] || []).slice().forEach(function (handler) {
      try { handler(payload); } catch (err) { setTimeout(function () { throw err; }, 0); }
    });
  };
  BaseElement.prototype.mount = function (target) {
    if (this._mounted) throw integrationError('This Element is already mounted. Call unmount() first.');
    ensureStylesheet();
    var container = resolveTarget(target);
    this._root = el('div', { className: 'sbx-element sbx-' + this._type, 'data-sbx-element': this._type });
    applyAppearance(this._root, this._group._options.appearance);
    this._render(this._root);
    container.appendChild(this._root);
    this._mounted = true;
    var self = this;
    setTimeout(function () {
      self._ready = true;
      self._emit('ready', { elementType: self._type });
    }, 0);
  };
  BaseElement.prototype.unmount = function () {
    if (this._root && this._root.parentNode) this._root.parentNode.removeChild(this._root);
    this._mounted = false;
    this._ready = false;
  };
  BaseElement.prototype.destroy = function () {
    this.unmount();
    delete this._group._elements[this._type];
  };
  BaseElement.prototype.update = function (options) {
    Object.assign(this._options, options || {});
  };
  BaseElement.prototype.focus = function () {
    var first = this._root && this._root.querySelector('input:not([type=hidden]), select');
    if (first) first.focus();
  };
  BaseElement.prototype.blur = function () {
    if (this._root && this._root.contains(document.activeElement)) document.activeElement.blur();
  };
  BaseElement.prototype._changed = function () {
    this._group._dirty = true;
    this._lastState = this._state();
    this._emit('change', this._lastState);
  };

  // A labelled input with an error line underneath, wired for assistive technology.
  function field(labelText, inputAttributes) {
    var id = uid('input');
    var errorId = id + '-error';
    var input = el(inputAttributes.tag || 'input', Object.assign({
      id: id, className: 'sbx-input', 'aria-describedby': errorId
    }, inputAttributes, { tag: null }));
    var error = el('p', { id: errorId, className: 'sbx-field-error', hidden: true });
    var wrapper = el('div', { className: 'sbx-field' }, [
      el('label', { for: id, className: 'sbx-label', text: labelText }), input, error
    ]);
    return { wrapper: wrapper, input: input, error: error };
  }

  // The sandbox's test values as one radio group: choosing one hands its entry to `pick`.
  function testChoices(legendText, prefix, entries, describe, pick) {
    var fieldset = el('fieldset', { className: 'sbx-test-list' }, [
      el('legend', { className: 'sbx-legend', text: legendText })
    ]);
    var group = uid(prefix);
    var radios = entries.map(function (entry) {
      var choice = describe(entry);
      var input = el('input', { type: 'radio', name: group, value: choice.value });
      input.addEventListener('change', function () {
        if (input.checked) pick(entry);
      });
      fieldset.appendChild(el('label', { className: 'sbx-choice' }, [
        input, el('span', { className: 'sbx-choice-label', text: choice.label })
      ]));
      return input;
    });
    return { fieldset: fieldset, radios: radios };
  }

  function setFieldError(entry, message) {
    entry.error.textContent = message || '';
    entry.error.hidden = !message;
    if (message) entry.input.setAttribute('aria-invalid', 'true');
    else entry.input.removeAttribute('aria-invalid');
  }

  // ---------------------------------------------------------------- Payment Element

  function PaymentElement(group, options) {
    BaseElement.call(this, group, 'payment', options);
    this._method = 'card';
  }
  PaymentElement.prototype = Object.create(BaseElement.prototype);

  PaymentElement.prototype._render = function (root) {
    var t = this._t();
    var self = this;
    var groupName = uid('method');
    root.appendChild(el('p', { className: 'sbx-badge', text: t('Stripe sandbox · test payment methods only, nothing is charged') }));

    var methodChoice = el('fieldset', { className: 'sbx-methods' }, [
      el('legend', { className: 'sbx-legend', text: t('Payment method') })
    ]);
    var methods = [['card', t('Card')], ['sepa_debit', t('SEPA Direct Debit')]];
    var groupOptions = this._group._options;
    // Only set-ups: the sandbox does not emulate paying with them (docs/sandbox.md).
    if (groupOptions.mode === 'setup' && String(groupOptions.currency || '').toLowerCase() === 'eur') {
      methods = methods.concat(BANK_METHODS);
    }
    methods.forEach(function (pair) {
      var input = el('input', { type: 'radio', name: groupName, value: pair[0], checked: pair[0] === 'card', id: uid('method-' + pair[0]) });
      input.addEventListener('change', function () { if (input.checked) self._selectMethod(pair[0]); });
      methodChoice.appendChild(el('label', { className: 'sbx-method' }, [input, el('span', { text: pair[1] })]));
    });
    root.appendChild(methodChoice);

    // Card panel: pick a documented test card or type a number.
    this._number = field(t('Card number'), {
      type: 'text', inputmode: 'numeric', autocomplete: 'cc-number', placeholder: '1234 1234 1234 1234', maxlength: 23
    });
    this._expiry = field(t('Expiration date (MM / YY)'), {
      type: 'text', inputmode: 'numeric', autocomplete: 'cc-exp', placeholder: 'MM / YY', maxlength: 7
    });
    this._cvc = field(t('Security code (CVC)'), {
      type: 'text', inputmode: 'numeric', autocomplete: 'cc-csc', placeholder: 'CVC', maxlength: 4
    });
    var cardChoices = testChoices(t('Test cards'), 'card', TEST_CARDS, function (card) {
      return { value: card.number, label: card.label + ' — ' + card.hint };
    }, function (card) {
      self._number.input.value = formatCardNumber(card.number);
      if (!self._expiry.input.value) self._expiry.input.value = '12 / 34';
      if (!self._cvc.input.value) self._cvc.input.value = '123';
      self._clearErrors();
      self._changed();
    });
    this._cardRadios = cardChoices.radios;
    this._number.input.addEventListener('input', function () {
      var digits = self._number.input.value.replace(/\D/g, '').slice(0, 19);
      self._number.input.value = formatCardNumber(digits);
      self._cardRadios.forEach(function (radio) { radio.checked = radio.value === digits; });
      setFieldError(self._number, '');
      self._changed();
    });
    this._expiry.input.addEventListener('input', function () {
      var digits = self._expiry.input.value.replace(/\D/g, '').slice(0, 4);
      self._expiry.input.value = digits.length > 2 ? digits.slice(0, 2) + ' / ' + digits.slice(2) : digits;
      setFieldError(self._expiry, '');
      self._changed();
    });
    this._cvc.input.addEventListener('input', function () {
      self._cvc.input.value = self._cvc.input.value.replace(/\D/g, '').slice(0, 4);
      setFieldError(self._cvc, '');
      self._changed();
    });
    this._cardPanel = el('div', { className: 'sbx-panel' }, [
      cardChoices.fieldset,
      this._number.wrapper,
      el('div', { className: 'sbx-row' }, [this._expiry.wrapper, this._cvc.wrapper])
    ]);
    root.appendChild(this._cardPanel);

    // SEPA panel: pick a test IBAN or type one.
    this._iban = field(t('IBAN'), {
      type: 'text', autocomplete: 'off', placeholder: 'DE00 0000 0000 0000 0000 00', maxlength: 42
    });
    var ibanChoices = testChoices(t('Test bank accounts'), 'iban', TEST_IBANS, function (entry) {
      return { value: entry.iban, label: 'SEPA ' + entry.label + ' — ' + entry.hint };
    }, function (entry) {
      self._iban.input.value = formatIban(entry.iban);
      setFieldError(self._iban, '');
      self._changed();
    });
    this._ibanRadios = ibanChoices.radios;
    this._iban.input.addEventListener('input', function () {
      var compact = self._iban.input.value.replace(/\s/g, '').toUpperCase();
      self._ibanRadios.forEach(function (radio) { radio.checked = radio.value === compact; });
      setFieldError(self._iban, '');
      self._changed();
    });
    var merchant = (this._options.business && this._options.business.name) || 'the merchant';
    this._sepaPanel = el('div', { className: 'sbx-panel', hidden: true }, [
      ibanChoices.fieldset,
      this._iban.wrapper,
      el('p', {
        className: 'sbx-mandate',
        text: t('mandate:sepa').replace('{merchant}', merchant)
      })
    ]);
    root.appendChild(this._sepaPanel);
    this._renderBankPanel(root, merchant);
  };

  // iDEAL / Bancontact: name and email for the SEPA mandate, and the bank for iDEAL.
  PaymentElement.prototype._renderBankPanel = function (root, merchant) {
    var t = this._t();
    var self = this;
    this._holder = field(t('Full name'), { type: 'text', autocomplete: 'name' });
    this._email = field(t('Email'), { type: 'email', autocomplete: 'email' });
    this._bank = field(t('Bank'), { tag: 'select' });
    var defaults = (this._options.defaultValues && this._options.defaultValues.billingDetails) || {};
    this._holder.input.value = defaults.name || '';
    this._email.input.value = defaults.email || '';
    IDEAL_BANKS.forEach(function (pair) { self._bank.input.appendChild(el('option', { value: pair[0], text: pair[1] })); });
    [this._holder, this._email, this._bank].forEach(function (entry) {
      entry.input.addEventListener(entry === self._bank ? 'change' : 'input', function () {
        setFieldError(entry, '');
        self._changed();
      });
    });
    this._bankPanel = el('div', { className: 'sbx-panel', hidden: true }, [
      this._holder.wrapper,
      this._email.wrapper,
      this._bank.wrapper,
      el('p', {
        className: 'sbx-mandate',
        text: t('mandate:bank').replace('{merchant}', merchant)
      })
    ]);
    root.appendChild(this._bankPanel);
  };

  PaymentElement.prototype._selectMethod = function (method) {
    this._method = method;
    this._cardPanel.hidden = method !== 'card';
    this._sepaPanel.hidden = method !== 'sepa_debit';
    this._bankPanel.hidden = method !== 'ideal' && method !== 'bancontact';
    this._bank.wrapper.hidden = method !== 'ideal';
    this._clearErrors();
    this._changed();
  };

  PaymentElement.prototype._clearErrors = function () {
    [this._number, this._expiry, this._cvc, this._iban, this._holder, this._email, this._bank].forEach(function (entry) { setFieldError(entry, ''); });
  };

  PaymentElement.prototype._cardValues = function () {
    var expiry = this._expiry.input.value.replace(/\D/g, '');
    return {
      number: this._number.input.value.replace(/\D/g, ''),
      expMonth: expiry.slice(0, 2),
      expYear: expiry.slice(2, 4),
      cvc: this._cvc.input.value.replace(/\D/g, '')
    };
  };

  // The first problem with what was typed, in Stripe's words, or null.
  PaymentElement.prototype._problem = function () {
    var t = this._t();
    if (this._method === 'ideal' || this._method === 'bancontact') {
      if (!this._holder.input.value.trim()) return { entry: this._holder, code: 'incomplete_name', message: t('Your full name is incomplete.') };
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(this._email.input.value.trim())) {
        return { entry: this._email, code: 'incomplete_email', message: t('Your email is incomplete.') };
      }
      if (this._method === 'ideal' && !this._bank.input.value) return { entry: this._bank, code: 'incomplete_bank', message: t('Select your bank.') };
      return null;
    }
    if (this._method === 'sepa_debit') {
      var iban = this._iban.input.value.replace(/\s/g, '').toUpperCase();
      if (iban.length < 15) return { entry: this._iban, code: 'incomplete_iban', message: t('Your IBAN is incomplete.') };
      if (!ibanValid(iban)) return { entry: this._iban, code: 'invalid_iban', message: t('Your IBAN is invalid.') };
      return null;
    }
    var card = this._cardValues();
    if (card.number.length < 13) return { entry: this._number, code: 'incomplete_number', message: t('Your card number is incomplete.') };
    if (!luhnValid(card.number)) return { entry: this._number, code: 'invalid_number', message: t('Your card number is invalid.') };
    if (card.expMonth.length < 2 || card.expYear.length < 2) {
      return { entry: this._expiry, code: 'incomplete_expiry', message: t("Your card's expiration date is incomplete.") };
    }
    var month = Number(card.expMonth);
    if (month < 1 || month > 12) return { entry: this._expiry, code: 'invalid_expiry_month', message: t("Your card's expiration month is invalid.") };
    var now = new Date();
    var year = 2000 + Number(card.expYear);
    if (year < now.getFullYear() || (year === now.getFullYear() && month < now.getMonth() + 1)) {
      return { entry: this._expiry, code: 'invalid_expiry_year_past', message: t("Your card's expiration year is in the past.") };
    }
    if (card.cvc.length < 3) return { entry: this._cvc, code: 'incomplete_cvc', message: t("Your card's security code is incomplete.") };
    return null;
  };

  PaymentElement.prototype._state = function () {
    var empty = this._method === 'card'
      ? !this._number.input.value && !this._expiry.input.value && !this._cvc.input.value
      : this._method === 'sepa_debit' ? !this._iban.input.value : !this._holder.input.value && !this._email.input.value;
    return {
      elementType: 'payment',
      empty: empty,
      complete: this._problem() === null,
      collapsed: false,
      value: { type: this._method }
    };
  };

  PaymentElement.prototype._validate = function () {
    var problem = this._problem();
    this._clearErrors();
    if (!problem) return null;
    setFieldError(problem.entry, problem.message);
    return { element: problem.entry.input, error: { type: 'validation_error', code: problem.code, message: problem.message } };
  };

  PaymentElement.prototype._paymentMethodData = function () {
    if (this._method === 'ideal') return { type: 'ideal', ideal: { bank: this._bank.input.value } };
    if (this._method === 'bancontact') return { type: 'bancontact' };
    if (this._method === 'sepa_debit') {
      return { type: 'sepa_debit', sepa_debit: { iban: this._iban.input.value.replace(/\s/g, '').toUpperCase() } };
    }
    var card = this._cardValues();
    return {
      type: 'card',
      card: { number: card.number, exp_month: Number(card.expMonth), exp_year: 2000 + Number(card.expYear), cvc: card.cvc }
    };
  };

  PaymentElement.prototype._billingDefaults = function () {
    var defaults = (this._options.defaultValues && this._options.defaultValues.billingDetails) || {};
    var billing = Object.assign({}, defaults);
    if (this._method === 'ideal' || this._method === 'bancontact') {
      billing.name = this._holder.input.value.trim();
      billing.email = this._email.input.value.trim();
    }
    return billing;
  };

  // ---------------------------------------------------------------- Address Element

  function AddressElement(group, options) {
    BaseElement.call(this, group, 'address', options);
  }
  AddressElement.prototype = Object.create(BaseElement.prototype);

  AddressElement.prototype._render = function (root) {
    var t = this._t();
    var self = this;
    var defaults = (this._options.defaultValues) || {};
    var address = defaults.address || {};
    this._fields = {
      name: field(t('Full name'), { type: 'text', autocomplete: 'name' }),
      country: field(t('Country or region'), { tag: 'select', autocomplete: 'country' }),
      line1: field(t('Address line 1'), { type: 'text', autocomplete: 'address-line1' }),
      line2: field(t('Address line 2 (optional)'), { type: 'text', autocomplete: 'address-line2' }),
      city: field(t('City'), { type: 'text', autocomplete: 'address-level2' }),
      postal_code: field(t('Postal code'), { type: 'text', autocomplete: 'postal-code' })
    };
    var allowed = this._options.allowedCountries;
    COUNTRIES.forEach(function (pair) {
      if (allowed && allowed.indexOf(pair[0]) === -1) return;
      self._fields.country.input.appendChild(el('option', { value: pair[0], text: pair[1] }));
    });
    this._fields.name.input.value = defaults.name || '';
    this._fields.country.input.value = address.country || (allowed && allowed[0]) || 'US';
    ['line1', 'line2', 'city', 'postal_code'].forEach(function (key) {
      self._fields[key].input.value = address[key] || '';
    });
    Object.keys(this._fields).forEach(function (key) {
      var entry = self._fields[key];
      root.appendChild(entry.wrapper);
      entry.input.addEventListener(key === 'country' ? 'change' : 'input', function () {
        setFieldError(entry, '');
        self._changed();
      });
    });
    root.classList.add('sbx-address-' + (this._options.mode || 'billing'));
  };

  var ADDRESS_MESSAGES = {
    name: 'Your full name is incomplete.',
    line1: 'Your address is incomplete.',
    city: 'Your city is incomplete.',
    postal_code: 'Your postal code is incomplete.',
    country: 'Choose a country or region.'
  };

  AddressElement.prototype._values = function () {
    var f = this._fields;
    function value(key) { return f[key].input.value.trim(); }
    return {
      name: value('name'),
      address: {
        line1: value('line1'), line2: value('line2') || null, city: value('city'),
        postal_code: value('postal_code'), country: value('country'), state: null
      }
    };
  };

  AddressElement.prototype._problem = function () {
    var t = this._t();
    var values = this._values();
    var flat = Object.assign({ name: values.name }, values.address);
    var keys = ['name', 'line1', 'city', 'postal_code', 'country'];
    for (var i = 0; i < keys.length; i++) {
      if (!flat[keys[i]]) {
        return { entry: this._fields[keys[i]], code: 'incomplete_' + keys[i], message: ADDRESS_MESSAGES[keys[i]] };
      }
    }
    return null;
  };

  AddressElement.prototype._state = function () {
    var values = this._values();
    return {
      elementType: 'address',
      empty: !values.name && !values.address.line1 && !values.address.city && !values.address.postal_code,
      complete: this._problem() === null,
      isNewAddress: true,
      value: values
    };
  };

  AddressElement.prototype._validate = function () {
    var self = this;
    Object.keys(this._fields).forEach(function (key) { setFieldError(self._fields[key], ''); });
    var problem = this._problem();
    if (!problem) return null;
    setFieldError(problem.entry, problem.message);
    return { element: problem.entry.input, error: { type: 'validation_error', code: problem.code, message: problem.message } };
  };

  AddressElement.prototype.getValue = function () {
    var state = this._state();
    return Promise.resolve({ complete: state.complete, isNewAddress: true, value: state.value });
  };

  // ---------------------------------------------------------------- Elements group

  function Elements(stripe, options) {
    this._stripe = stripe;
    this._options = Object.assign({}, options || {});
    this._elements = {};
    this._dirty = true;
  }

  Elements.prototype.create = function (type, options) {
    var Constructor = { payment: PaymentElement, address: AddressElement }[type];
    if (!Constructor) throw integrationError('The sandbox stand-in supports only the payment and address Elements, not ' + type + '.');
    if (this._elements[type]) throw integrationError('Can only create one Element of type ' + type + '.');
    var element = new Constructor(this, options);
    this._elements[type] = element;
    return element;
  };
  // `locale` of elements(), else of Stripe(); 'auto' follows the browser. en and ja only.
  Elements.prototype._locale = function () {
    var locale = this._options.locale || this._stripe._options.locale || 'auto';
    if (locale === 'auto') locale = navigator.language || 'en';
    return String(locale).toLowerCase().slice(0, 2) === 'ja' ? 'ja' : 'en';
  };
  Elements.prototype.getElement = function (type) { return this._elements[type] || null; };
  Elements.prototype.update = function (options) { Object.assign(this._options, options || {}); };
  Elements.prototype.fetchUpdates = function () { return Promise.resolve({}); };

  Elements.prototype.submit = function () {
    var payment = this._elements.payment;
    if (!payment || !payment._mounted) {
      return Promise.resolve({ error: { type: 'invalid_request_error', code: 'elements_not_mounted', message: 'Mount the Payment Element before calling elements.submit().' } });
    }
    var found = null;
    ['payment', 'address'].forEach(function (type) {
      var element = this._elements[type];
      if (!element || !element._mounted) return;
      var result = element._validate();
      if (result && !found) found = result;
    }, this);
    if (found) {
      found.element.focus();
      return Promise.resolve({ error: found.error });
    }
    this._dirty = false;
    return Promise.resolve({});
  };

  // payment_method_data for the API: what the Elements hold, then explicit params on top.
  Elements.prototype._paymentMethodData = function (explicit) {
    var payment = this._elements.payment;
    var address = this._elements.address;
    var data = payment._paymentMethodData();
    var billing = payment._billingDefaults();
    if (address && address._mounted && (address._options.mode || 'billing') === 'billing') {
      var values = address._values();
      billing.name = values.name;
      billing.address = values.address;
    }
    var given = (explicit && explicit.billing_details) || {};
    Object.keys(given).forEach(function (key) {
      if (key === 'address' && given.address && billing.address) {
        billing.address = Object.assign({}, billing.address, given.address);
      } else {
        billing[key] = given[key];
      }
    });
    data.billing_details = billing;
    if (explicit && explicit.metadata) data.metadata = explicit.metadata;
    if (explicit && explicit.allow_redisplay) data.allow_redisplay = explicit.allow_redisplay;
    return data;
  };

  Elements.prototype._shipping = function (explicit) {
    if (explicit) return explicit;
    var address = this._elements.address;
    if (address && address._mounted && address._options.mode === 'shipping') {
      var values = address._values();
      return { name: values.name, address: values.address };
    }
    return undefined;
  };

  // ---------------------------------------------------------------- the Stripe object

  function StripeSandbox(publishableKey, options) {
    if (typeof publishableKey !== 'string' || publishableKey.indexOf('pk_') !== 0) {
      throw integrationError('Invalid value for Stripe(): apiKey should be a publishable key (pk_...).');
    }
    if (publishableKey.indexOf('pk_live_') === 0) {
      throw integrationError('The Stripe sandbox refuses live keys.');
    }
    this._key = publishableKey;
    this._options = options || {};
  }

  StripeSandbox.prototype.elements = function (options) {
    // The challenge dialog borrows the look of the most recent Elements group.
    this._appearance = (options && options.appearance) || this._appearance;
    return new Elements(this, options);
  };

  StripeSandbox.prototype._notSubmittedError = function (method) {
    return {
      type: 'invalid_request_error',
      code: 'elements_not_submitted',
      message: 'elements.submit() must be called before stripe.' + method + '(). Call elements.submit() ' +
        'as soon as your customer presses pay, prior to any asynchronous work.'
    };
  };

  StripeSandbox.prototype._createConfirmationToken = function (elements, params) {
    params = params || {};
    var body = {
      payment_method_data: elements._paymentMethodData(params.payment_method_data),
      return_url: params.return_url,
      shipping: elements._shipping(params.shipping)
    };
    // Debits need the customer's acceptance of the mandate the Payment Element showed.
    if (body.payment_method_data.type !== 'card') {
      body.mandate_data = { customer_acceptance: { type: 'online', online: { infer_from_client: true } } };
    }
    var futureUsage = elements._options.setupFutureUsage || elements._options.setup_future_usage;
    if (futureUsage && elements._options.mode === 'payment') body.setup_future_usage = futureUsage;
    return request(this._key, 'POST', '/v1/confirmation_tokens', body);
  };

  StripeSandbox.prototype.createConfirmationToken = function (options) {
    options = options || {};
    var elements = options.elements;
    if (!elements || !(elements instanceof Elements)) {
      return Promise.reject(integrationError('stripe.createConfirmationToken() requires the elements you mounted.'));
    }
    if (!elements._elements.payment) {
      return Promise.resolve({ error: { type: 'invalid_request_error', message: 'Create and mount a Payment Element first.' } });
    }
    if (elements._dirty) return Promise.resolve({ error: this._notSubmittedError('createConfirmationToken') });
    return this._createConfirmationToken(elements, options.params).then(function (answer) {
      return answer.error ? { error: answer.error } : { confirmationToken: answer.body };
    });
  };

  StripeSandbox.prototype._retrieve = function (clientSecret) {
    var intent = parseClientSecret(clientSecret);
    if (!intent) return Promise.resolve({ error: invalidSecretError(clientSecret) });
    return request(this._key, 'GET', intent.path + intent.id, { client_secret: clientSecret }).then(function (answer) {
      var result = {};
      if (answer.error) result.error = answer.error;
      else result[intent.resultKey] = answer.body;
      return result;
    });
  };

  StripeSandbox.prototype.retrieveSetupIntent = function (clientSecret) {
    if (!/^seti_/.test(String(clientSecret))) return Promise.resolve({ error: invalidSecretError(clientSecret) });
    return this._retrieve(clientSecret);
  };

  StripeSandbox.prototype.retrievePaymentIntent = function (clientSecret) {
    if (!/^pi_/.test(String(clientSecret))) return Promise.resolve({ error: invalidSecretError(clientSecret) });
    return this._retrieve(clientSecret);
  };

  // What an intent means for the page once nothing more can happen in the browser.
  function settle(intent, object) {
    var result = {};
    var lastError = object[intent.lastErrorKey];
    if ((object.status === 'requires_payment_method' || object.status === 'canceled') && lastError) {
      result.error = Object.assign({}, lastError);
      result.error[intent.errorKey] = object;
      return result;
    }
    result[intent.resultKey] = object;
    return result;
  }

  StripeSandbox.prototype._runNextAction = function (intent, object) {
    var self = this;
    var action = object.next_action || {};
    if (action.type === 'redirect_to_url' && action.redirect_to_url && action.redirect_to_url.url) {
      location.assign(action.redirect_to_url.url);
      return new Promise(function () {});  // the page is going away, as with Stripe.js
    }
    if (action.type !== 'use_stripe_sdk') {
      var unsupported = { type: 'invalid_request_error', code: 'unsupported_next_action', message: 'The sandbox stand-in cannot handle next_action ' + action.type + '.' };
      unsupported[intent.errorKey] = object;
      return Promise.resolve({ error: unsupported });
    }
    return runChallenge(this._appearance).then(function (outcome) {
      return request(self._key, 'POST', '/v1/_sandbox/authenticate', {
        intent: intent.id, client_secret: intent.clientSecret, outcome: outcome
      });
    }).then(function (answer) {
      if (answer.error) return { error: answer.error };
      return settle(intent, answer.body);
    });
  };

  StripeSandbox.prototype.handleNextAction = function (options) {
    var self = this;
    var clientSecret = options && options.clientSecret;
    var intent = parseClientSecret(clientSecret);
    if (!intent) return Promise.resolve({ error: invalidSecretError(clientSecret) });
    return request(this._key, 'GET', intent.path + intent.id, { client_secret: clientSecret }).then(function (answer) {
      if (answer.error) return { error: answer.error };
      var object = answer.body;
      if (object.status !== 'requires_action') {
        var error = {
          type: 'invalid_request_error',
          code: intent.errorKey + '_unexpected_state',
          message: 'handleNextAction needs a ' + intent.noun + ' in requires_action; this one is ' + object.status + '.'
        };
        error[intent.errorKey] = object;
        return { error: error };
      }
      return self._runNextAction(intent, object);
    });
  };

  // Shared by confirmPayment and confirmSetup.
  StripeSandbox.prototype._confirm = function (kind, options) {
    var self = this;
    options = options || {};
    var elements = options.elements;
    var clientSecret = options.clientSecret || (elements && elements._options.clientSecret);
    var intent = parseClientSecret(clientSecret);
    var method = kind === 'payment' ? 'confirmPayment' : 'confirmSetup';
    if (!intent || (kind === 'payment') !== (intent.resultKey === 'paymentIntent')) {
      return Promise.resolve({ error: invalidSecretError(clientSecret) });
    }
    var confirmParams = options.confirmParams || {};
    var redirect = options.redirect || 'always';
    if (redirect === 'always' && !confirmParams.return_url) {
      return Promise.reject(integrationError('stripe.' + method + '(): confirmParams.return_url is required when redirect is "always".'));
    }
    var body = { client_secret: clientSecret, return_url: confirmParams.return_url };
    var ready;
    if (elements && elements._elements.payment && !confirmParams.payment_method) {
      if (elements._dirty) return Promise.resolve({ error: this._notSubmittedError(method) });
      ready = this._createConfirmationToken(elements, {
        payment_method_data: confirmParams.payment_method_data,
        return_url: confirmParams.return_url,
        shipping: confirmParams.shipping
      }).then(function (answer) {
        if (answer.error) return answer;
        body.confirmation_token = answer.body.id;
        return {};
      });
    } else {
      if (confirmParams.payment_method) body.payment_method = confirmParams.payment_method;
      ready = Promise.resolve({});
    }
    return ready.then(function (prepared) {
      if (prepared.error) return { error: prepared.error };
      return request(self._key, 'POST', intent.path + intent.id + '/confirm', body).then(function (answer) {
        if (answer.error) return { error: answer.error };
        if (answer.body.status === 'requires_action') return self._runNextAction(intent, answer.body);
        return settle(intent, answer.body);
      });
    }).then(function (result) {
      var object = result[intent.resultKey];
      if (object && redirect !== 'if_required' && confirmParams.return_url) {
        var target = new URL(confirmParams.return_url, location.href);
        target.searchParams.set(intent.errorKey, object.id);
        target.searchParams.set(intent.errorKey + '_client_secret', clientSecret);
        target.searchParams.set('redirect_status', object.status === 'succeeded' ? 'succeeded' : object.status);
        location.assign(target.href);
        return new Promise(function () {});
      }
      return result;
    });
  };

  StripeSandbox.prototype.confirmPayment = function (options) { return this._confirm('payment', options); };
  StripeSandbox.prototype.confirmSetup = function (options) { return this._confirm('setup', options); };

  // ---------------------------------------------------------------- formatting and checks

  function formatCardNumber(digits) {
    return digits.replace(/(\d{4})(?=\d)/g, '$1 ');
  }

  function formatIban(iban) {
    return iban.replace(/(.{4})(?=.)/g, '$1 ');
  }

  function luhnValid(number) {
    if (!/^\d{12,19}$/.test(number)) return false;
    var total = 0;
    for (var i = 0; i < number.length; i++) {
      var digit = Number(number.charAt(number.length - 1 - i));
      if (i % 2 === 1) digit = digit > 4 ? digit * 2 - 9 : digit * 2;
      total += digit;
    }
    return total % 10 === 0;
  }

  function ibanValid(iban) {
    if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
    var rearranged = iban.slice(4) + iban.slice(0, 4);
    var remainder = 0;
    for (var i = 0; i < rearranged.length; i++) {
      var chunk = String(parseInt(rearranged.charAt(i), 36));
      for (var j = 0; j < chunk.length; j++) remainder = (remainder * 10 + Number(chunk.charAt(j))) % 97;
    }
    return remainder === 1;
  }

  window.Stripe = function Stripe(publishableKey, options) {
    return new StripeSandbox(publishableKey, options);
  };
  window.Stripe.version = 3;
  window.Stripe.sandbox = true;
})();
