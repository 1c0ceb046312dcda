// What the pages find on `window`: Stripe.js (Stripe's own, or the sandbox's stand-in, which
// must offer the same signatures) and the pages' shared helpers (common.js).
import type { StripeConstructor } from '@stripe/stripe-js';

declare global {
  interface Window {
    Stripe: StripeConstructor;
    PageKit: any;
    // The pages' words, one catalogue per language (checkout_page/i18n/*.js).
    PageText: any;
    // The sign-up CAPTCHA's widget (Cloudflare Turnstile or hCaptcha): the calls the page makes.
    turnstile?: CaptchaWidgetApi;
    hcaptcha?: CaptchaWidgetApi;
  }

  interface CaptchaWidgetApi {
    render(container: HTMLElement | string, options: { sitekey: string }): string;
    getResponse(widgetId?: string): string | undefined;
    reset(widgetId?: string): void;
  }
}
