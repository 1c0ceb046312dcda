/*
 * Every word the pages show in English: the save-a-method page (`checkout`) and the recovery
 * page (`recover`). One catalogue per language; the pages pick one by the locale the server
 * chose (the switch on the page, then Accept-Language, then the customer's stored locale).
 */
(() => {
  'use strict';
  const BRAND_NAMES = window.PageKit.BRAND_NAMES;
  window.PageText = window.PageText || {};
  window.PageText.en = {
    label: 'English',
    checkout: {
      pageTitle: 'Save a payment method',
      skipLink: 'Skip to the form',
      heading: 'Save a payment method',
      lede: 'Nothing is charged today. We keep your card or bank account on file with our payment provider and charge it later for what you order.',
      sandbox: 'Sandbox mode: use the test cards and bank accounts below. No real payment provider is contacted.',
      loading: 'Loading…',
      detailsTitle: '1. Your details',
      email: 'Email',
      fullName: 'Full name',
      continue: 'Continue',
      paymentTitle: '2. Payment method',
      savingFor: 'Saving for',
      notYou: 'Not you?',
      billingAddress: 'Billing address',
      paymentNote: 'By saving, you allow us to charge this payment method for future orders. You can remove it at any time.',
      saveButton: 'Save payment method',
      savedTitle: 'Payment method saved',
      notChargedYet: 'You will not be charged until you place an order.',
      saveAnother: 'Save another payment method',
      network: 'We could not reach our server. Check your connection and try again.',
      someMethod: 'Your payment method',
      generatedSepa: (last4, origin) => `SEPA Direct Debit ••${last4}, from ${origin}`,
      sepa: (last4) => `Bank account (SEPA Direct Debit) ending in ${last4}`,
      card: 'Card',
      expires: (month, year) => ` (expires ${month}/${year})`,
      cardEnding: (brand, last4, expiry) => `${brand} ending in ${last4}${expiry}`,
      captchaBox: ' I am not a robot (sandbox challenge)',
      captchaFailed: 'The sign-up check could not load. Reload the page to try again.',
      enterName: 'Enter your name.',
      enterEmail: 'Enter your email address.',
      signingUp: 'Signing you up…',
      signUpFailed: 'We could not sign you up. Please try again.',
      sessionEnded: 'Your session has ended. Please enter your details again.',
      notSaved: 'Your payment method could not be saved. Please try again.',
      waitingForBank: 'Waiting for your bank to confirm…',
      bankFailed: 'Your bank could not confirm this payment method.',
      checkFailed: 'We could not check your payment method. Please reload the page.',
      saved: (description) => `${description} is saved.`,
      savedPending: (description) => `${description} is saved and is being confirmed with your bank.`,
      tryAnother: 'Your payment method could not be saved. Please try another one.',
      saving: 'Saving your payment method…',
      generic: 'Something went wrong. Please try again.',
      loadFailed: 'This page could not load. Please reload it.',
      formLoadFailed: 'The payment form could not load. Reload the page to try again.'
    },
    recover: {
      title: 'Complete your payment',
      loading: 'Loading…',
      sandbox: 'Sandbox mode: use the test cards. No real payment provider is contacted.',
      amountDue: (amount) => `${amount} to pay`,
      reasonAuth: 'Your bank asked you to confirm this payment yourself. It takes a minute.',
      reasonNew: (reason) => `We could not charge your payment method: ${reason}. Please pay with another one.`,
      reasons: {
        insufficient_funds: 'it has insufficient funds',
        payment_intent_authentication_failure: 'the bank could not confirm it',
        other: 'the bank declined it'
      },
      method: (method) => method.type === 'sepa_debit'
        ? `your bank account ending in ${method.last4}`
        : `your ${BRAND_NAMES[method.brand] || 'card'} ending in ${method.last4}`,
      savedMethod: (label) => `You will pay with ${label}.`,
      confirmButton: (amount) => `Confirm ${amount}`,
      payButton: (amount) => `Pay ${amount}`,
      useNew: 'Pay with a different card instead',
      newNote: 'The payment method you enter is saved for your future payments.',
      waitingForBank: 'Waiting for your bank…',
      paying: 'Paying…',
      confirming: 'Confirming your payment…',
      doneTitle: 'Thank you',
      doneMessage: (amount) => `Your payment of ${amount} is complete.`,
      slowMessage: 'Your bank accepted the payment. It can take a minute to show here: you can close this page.',
      processingTitle: 'Payment on its way',
      processingMessage: 'Your bank is processing the payment. There is nothing more to do.',
      paidTitle: 'Already paid',
      paidMessage: (amount) => `This payment of ${amount} is complete. There is nothing more to do.`,
      canceledTitle: 'Payment canceled',
      canceledMessage: 'This payment was canceled. There is nothing to pay.',
      expiredTitle: 'This link has expired',
      expiredMessage: 'For your security, payment links work for a limited time. We can email you a new one at the address we have on file.',
      freshButton: 'Email me a new link',
      freshSent: (to) => to ? `We sent a new link to ${to}.` : 'We sent a new link to your email address.',
      freshLimited: 'A new link was sent recently. Please check your inbox.',
      invalidTitle: 'This link is not valid',
      invalidMessage: 'Check that you opened the whole link from your email. If it still does not work, reply to that email.',
      declined: 'Your payment method was declined. Please try another one.',
      bankFailed: 'Your bank could not confirm the payment. Please try again.',
      network: 'We could not reach our server. Check your connection and try again.',
      generic: 'Something went wrong. Please try again.',
      loadFailed: 'This page could not load. Please reload it.'
    }
  };
})();
