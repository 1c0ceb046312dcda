/*
 * Every word the pages show in Japanese: the save-a-method page (`checkout`) and the recovery
 * page (`recover`). One catalogue per language; the pages pick one by the locale the server
 * chose (the switch on the page, then Accept-Language, then the customer's stored locale).
 */
(() => {
  'use strict';
  const BRAND_NAMES = window.PageKit.BRAND_NAMES;
  window.PageText = window.PageText || {};
  window.PageText.ja = {
    label: '日本語',
    checkout: {
      pageTitle: 'お支払い方法の登録',
      skipLink: 'フォームへ移動',
      heading: 'お支払い方法の登録',
      lede: '本日の請求はありません。カードまたは銀行口座を決済サービスに登録し、ご注文の際にご請求します。',
      sandbox: 'サンドボックスモード：下のテスト用カードと口座をお使いください。実際の決済サービスには接続しません。',
      loading: '読み込み中…',
      detailsTitle: '1. お客様情報',
      email: 'メールアドレス',
      fullName: '氏名',
      continue: '次へ',
      paymentTitle: '2. お支払い方法',
      savingFor: '登録先：',
      notYou: 'ご本人ではありませんか？',
      billingAddress: '請求先住所',
      paymentNote: '登録すると、今後のご注文でこのお支払い方法に請求することに同意したことになります。登録はいつでも削除できます。',
      saveButton: 'お支払い方法を登録する',
      savedTitle: 'お支払い方法を登録しました',
      notChargedYet: 'ご注文いただくまで請求は発生しません。',
      saveAnother: '別のお支払い方法を登録する',
      network: 'サーバーに接続できませんでした。通信環境をご確認のうえ、もう一度お試しください。',
      someMethod: 'お支払い方法',
      generatedSepa: (last4, origin) => `SEPA ダイレクトデビット ••${last4}（${origin} から）`,
      sepa: (last4) => `銀行口座（SEPA ダイレクトデビット、末尾 ${last4}）`,
      card: 'カード',
      expires: (month, year) => `（有効期限 ${month}/${year}）`,
      cardEnding: (brand, last4, expiry) => `${brand}（末尾 ${last4}）${expiry}`,
      captchaBox: ' ロボットではありません（サンドボックスの確認）',
      captchaFailed: '登録時の確認を読み込めませんでした。ページを再読み込みしてください。',
      enterName: '氏名を入力してください。',
      enterEmail: 'メールアドレスを入力してください。',
      signingUp: '登録しています…',
      signUpFailed: '登録できませんでした。もう一度お試しください。',
      sessionEnded: 'セッションの有効期限が切れました。もう一度お客様情報を入力してください。',
      notSaved: 'お支払い方法を登録できませんでした。もう一度お試しください。',
      waitingForBank: '銀行の確認を待っています…',
      bankFailed: '銀行でこのお支払い方法を確認できませんでした。',
      checkFailed: 'お支払い方法を確認できませんでした。ページを再読み込みしてください。',
      saved: (description) => `${description}を登録しました。`,
      savedPending: (description) => `${description}を登録しました。現在、銀行で確認中です。`,
      tryAnother: 'お支払い方法を登録できませんでした。別のお支払い方法をお試しください。',
      saving: 'お支払い方法を登録しています…',
      generic: '問題が発生しました。もう一度お試しください。',
      loadFailed: 'ページを読み込めませんでした。再読み込みしてください。',
      formLoadFailed: 'お支払いフォームを読み込めませんでした。ページを再読み込みしてください。'
    },
    recover: {
      title: 'お支払いのお手続き',
      loading: '読み込み中…',
      sandbox: 'サンドボックスモード：テスト用カードをお使いください。実際の決済サービスには接続しません。',
      amountDue: (amount) => `お支払い金額：${amount}`,
      reasonAuth: 'カード会社が、ご本人によるお支払いの確認（本人認証）を求めています。1分ほどで完了します。',
      reasonNew: (reason) => `${reason}ため、お支払いが完了しませんでした。別のお支払い方法でお支払いください。`,
      reasons: {
        insufficient_funds: '残高が不足していた',
        payment_intent_authentication_failure: 'カード会社で本人認証ができなかった',
        other: 'カード会社に承認されなかった'
      },
      method: (method) => method.type === 'sepa_debit'
        ? `ご登録の口座（末尾 ${method.last4}）`
        : `ご登録の${BRAND_NAMES[method.brand] || 'カード'}（末尾 ${method.last4}）`,
      savedMethod: (label) => `${label}でお支払いいただきます。`,
      confirmButton: (amount) => `${amount} のお支払いを確認する`,
      payButton: (amount) => `${amount} を支払う`,
      useNew: '別のカードで支払う',
      newNote: 'ご入力いただいたお支払い方法は、今後のお支払いに使用されます。',
      waitingForBank: 'カード会社の確認を待っています…',
      paying: 'お支払い中…',
      confirming: 'お支払いを確認しています…',
      doneTitle: 'ありがとうございました',
      doneMessage: (amount) => `${amount} のお支払いが完了しました。`,
      slowMessage: 'カード会社がお支払いを承認しました。反映まで少し時間がかかることがあります。このページは閉じていただいて構いません。',
      processingTitle: 'お支払いを処理中です',
      processingMessage: '銀行でお支払いを処理しています。これ以上のお手続きは不要です。',
      paidTitle: 'お支払い済みです',
      paidMessage: (amount) => `${amount} のお支払いは完了しています。これ以上のお手続きは不要です。`,
      canceledTitle: 'お支払いは取り消されました',
      canceledMessage: 'このお支払いは取り消されました。お支払いいただく必要はありません。',
      expiredTitle: 'このリンクは有効期限が切れています',
      expiredMessage: '安全のため、お支払いリンクには有効期限があります。ご登録のメールアドレスに新しいリンクをお送りできます。',
      freshButton: '新しいリンクをメールで受け取る',
      freshSent: (to) => to ? `${to} に新しいリンクをお送りしました。` : 'ご登録のメールアドレスに新しいリンクをお送りしました。',
      freshLimited: '新しいリンクを先ほどお送りしました。メールをご確認ください。',
      invalidTitle: 'このリンクは無効です',
      invalidMessage: 'メールに記載のリンクをすべて開いているかご確認ください。それでも開けない場合は、そのメールにご返信ください。',
      declined: 'お支払い方法が承認されませんでした。別のお支払い方法をお試しください。',
      bankFailed: 'カード会社でお支払いを確認できませんでした。もう一度お試しください。',
      network: 'サーバーに接続できませんでした。通信環境をご確認のうえ、もう一度お試しください。',
      generic: '問題が発生しました。もう一度お試しください。',
      loadFailed: 'ページを読み込めませんでした。再読み込みしてください。'
    }
  };
})();
