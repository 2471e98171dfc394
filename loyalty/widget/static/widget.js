/*! Loyalty storefront widget. No dependencies; talks to /v1/me with a widget token only.
 *
 * One tag, with a token minted by the storefront's server (POST /v1/widget-tokens):
 *   <div id="rewards"></div>
 *   <script src="https://loyalty.example.com/widget.js" data-token="..." data-target="#rewards"
 *           data-token-url="/my-server/widget-token"></script>
 * or from code:
 *   LoyaltyWidget.mount(element, {token, api, getToken: () => fetchNewToken()})
 *
 * data-api (default: where this script came from); data-token-url (POSTed to get {token} again
 * when the token expires; same-origin cookies sent); data-locale (default: the page's
 * <html lang>; English, French, German and Spanish are shipped, anything else reads English);
 * data-cart-subtotal (on a cart page, in minor units: the panel offers a slider to turn points
 * into money off this cart). The same as options: locale, cartSubtotal. Each of data-locale and
 * data-cart-subtotal may also sit on the target element.
 * Everything renders in a Shadow DOM: the page's styles don't reach in, ours don't leak out.
 * Theme with CSS custom properties on the host element: --loyalty-accent, --loyalty-radius.
 * Share links (email, SMS, WhatsApp, X, Facebook) are links the shopper follows; the widget
 * itself loads nothing from any host but its API.
 */
(function () {
  "use strict";

  // While the store has not yet created a new code as its own discount code, the widget asks
  // again this often, this many times (well inside WIDGET_RATE_LIMIT's reads per minute).
  var ACTIVATION_POLL_MS = 1500;
  var ACTIVATION_POLLS = 40;
  var CODES_SHOWN = 10;  // the member's most recent reward codes
  var DEFAULT_LANGUAGE = "en";
  // Languages written right to left: a catalogue in one of them lays the panel out mirrored.
  var RTL_LANGUAGES = ["ar", "fa", "he", "ur"];

  // --- Messages: every string the shopper reads, per language --------------------------------
  // `{name}` is filled in; a message that depends on a number is {one, other, ...} chosen by
  // Intl.PluralRules for the language, its number given as `n` (already formatted).
  var MESSAGES = {
    en: {
      loading: "Loading your rewards…",
      session_expired: "Your session has expired. Reload the page to see your rewards.",
      load_failed: "We couldn't load your rewards right now.",
      try_again: "Try again",
      region: "Loyalty rewards",
      eyebrow: "Rewards",
      greeting: "Hi {name}, here's your balance",
      your_balance: "Your balance",
      points_unit: { one: "point", other: "points" },
      points: { one: "{n} point", other: "{n} points" },
      pending: "+ {n} pending — available after the return window",
      your_tier: "Your tier",
      next_tier: "Next: {tier}",
      member: "Member",
      status_through: "Status through {date}",
      progress_label: "Progress to {tier}",
      progress_value: "{spent} of {threshold} spent",
      progress_text: "{spent} of {threshold} · spend {remaining} more to reach {tier}.",
      progress_value_count: "{spent} of {threshold}",
      progress_text_count: "{spent} of {threshold} · {remaining} more to reach {tier}.",
      orders: { one: "{n} order", other: "{n} orders" },
      top_tier: "You've reached our top tier. Thank you!",
      perks: "{tier} perks",
      tier: "Tier",
      rewards: "Rewards",
      no_rewards: "No rewards yet — check back soon.",
      tier_only: "{tier} members only",
      higher_tier: "A higher tier",
      out_of_stock: "Out of stock",
      already_redeemed: "Already redeemed",
      not_available: "Not available",
      more_points: { one: "{n} more point", other: "{n} more points" },
      redeem: "Redeem",
      confirm: "Confirm",
      locked: "Locked",
      redeem_aria: "Redeem {reward} for {cost}",
      confirm_aria: "Confirm: spend {cost} on {reward}",
      locked_aria: "{reward}: {why}",
      press_confirm: "Press Confirm to spend {cost}.",
      redeem_failed: "Couldn't redeem {reward}.",
      please_retry: "Please try again.",
      redeemed: "You redeemed {reward}.",
      activating: "Activating your code at the store…",
      redeemed_activating: "You redeemed {reward}. Activating your code at the store…",
      store_failed: "You redeemed {reward}, but the store could not activate the code.",
      points_safe: "Please contact us: your points are safe.",
      store_failed_short: "The store could not activate your code for {reward}.",
      redeemed_code: "You redeemed {reward}. Your code is {code}.",
      still_activating: "The store may take a few more minutes to accept it.",
      your_code_is: "Your code is",
      copy_code: "Copy code",
      copy_code_aria: "Copy code {code}",
      code_copied: "Code copied",
      use_by: "Use it at checkout by {date}.",
      copy_by_hand: "Select the text and copy it by hand.",
      share_heading: "Share and earn",
      share_label: "Your referral link — friends get a welcome reward",
      copy_link: "Copy link",
      link_copied: "Link copied to clipboard",
      clicks: { one: "{n} click", other: "{n} clicks" },
      friends_joined: { one: "{n} friend joined", other: "{n} friends joined" },
      points_earned: { one: "{n} point earned", other: "{n} points earned" },
      share_on: "Share your link",
      share_subject: "A welcome reward for you",
      share_text: "Here's a welcome reward for your first order: {url}",
      share_email: "Email",
      share_sms: "SMS",
      share_whatsapp: "WhatsApp",
      share_x: "X",
      share_facebook: "Facebook",
      share_more: "More options",
      share_aria: "Share by {via}",
      activity: "Recent activity",
      activity_label: "Recent points activity",
      entry_order: "Order {id}",
      entry_redeem: "Redeemed {reward}",
      a_reward: "a reward",
      entry_redeem_cancel: "Redemption canceled",
      entry_referral: "Referral reward",
      entry_expire: "Points expired",
      entry_refund: "Refund",
      entry_bonus: "Bonus",
      entry_adjust: "Adjustment",
      entry_earn: "Points earned",
      entry_pending: "pending",
      codes_heading: "Your reward codes",
      codes_label: "Your reward codes",
      status_issued: "Ready to use",
      status_used: "Used",
      status_canceled: "Canceled",
      status_expired: "Expired",
      code_expires: "Use by {date}",
      code_used: "Used on {date}",
      code_canceled: "Canceled on {date}",
      code_expired: "Expired on {date}",
      kind_amount_off: "{amount} off",
      kind_percent_off: "{percent} off",
      kind_free_shipping: "Free shipping",
      kind_free_product: "Free product",
      cancel_code: "Cancel",
      cancel_code_aria: "Cancel code {code}",
      cancel_question: "Cancel this code? {points} go back to your balance.",
      cancel_yes: "Yes, cancel it",
      cancel_no: "Keep it",
      canceled_notice: "Code canceled: {points} are back in your balance.",
      cancel_failed: "Couldn't cancel the code.",
      gc_heading: "Gift card balance",
      gc_label: "Gift card code",
      gc_check: "Check balance",
      gc_card: "Card ending in {last4}",
      gc_balance: "Balance: {amount}",
      gc_expires: "Valid until {date}",
      gc_no_expiry: "Never expires",
      gc_not_found: "We couldn't find a gift card with that code. Check it and try again.",
      gc_locked: { one: "Too many tries. Please try again in {n} minute.",
                   other: "Too many tries. Please try again in {n} minutes." },
      gc_failed: "We couldn't check the balance right now.",
      gc_empty: "Enter the code printed on your gift card.",
      ck_heading: "Use points on this order",
      ck_label: "Points to use",
      ck_value: "{points} = {amount} off",
      ck_range: "Between {min} and {max} points on this cart",
      ck_apply: "Apply {amount} off",
      ck_not_enough: "Collect {points} to use them on an order.",
      ck_cart_too_small: "Your cart is too small to use points on.",
      ck_done: "Your code for {amount} off this order:",
      ck_failed: "Couldn't create your discount.",
      err_points: "You don't have enough points for this.",
      err_busy: "Too many tries. Please wait a moment and try again.",
      err_changed: "This has changed in the meantime: reload the page to see it as it is now.",
      err_unavailable: "This isn't available any more.",
      err_invalid: "That can't be used on this cart.",
      ck_valid: "Enter it at checkout. Unused, it returns to points by {date}.",
    },
    fr: {
      loading: "Chargement de vos récompenses…",
      session_expired: "Votre session a expiré. Rechargez la page pour voir vos récompenses.",
      load_failed: "Impossible de charger vos récompenses pour le moment.",
      try_again: "Réessayer",
      region: "Programme de fidélité",
      eyebrow: "Récompenses",
      greeting: "Bonjour {name}, voici votre solde",
      your_balance: "Votre solde",
      points_unit: { one: "point", other: "points" },
      points: { one: "{n} point", other: "{n} points" },
      pending: "+ {n} en attente — disponibles après le délai de retour",
      your_tier: "Votre niveau",
      next_tier: "Suivant : {tier}",
      member: "Membre",
      status_through: "Statut valable jusqu’au {date}",
      progress_label: "Progression vers {tier}",
      progress_value: "{spent} dépensés sur {threshold}",
      progress_text: "{spent} sur {threshold} · encore {remaining} pour atteindre {tier}.",
      progress_value_count: "{spent} sur {threshold}",
      progress_text_count: "{spent} sur {threshold} · encore {remaining} pour atteindre {tier}.",
      orders: { one: "{n} commande", other: "{n} commandes" },
      top_tier: "Vous avez atteint notre niveau le plus élevé. Merci !",
      perks: "Avantages {tier}",
      tier: "Niveau",
      rewards: "Récompenses",
      no_rewards: "Pas encore de récompenses — revenez bientôt.",
      tier_only: "Réservé aux membres {tier}",
      higher_tier: "un niveau supérieur",
      out_of_stock: "Épuisé",
      already_redeemed: "Déjà utilisée",
      not_available: "Indisponible",
      more_points: { one: "encore {n} point", other: "encore {n} points" },
      redeem: "Échanger",
      confirm: "Confirmer",
      locked: "Verrouillée",
      redeem_aria: "Échanger {cost} contre {reward}",
      confirm_aria: "Confirmer : dépenser {cost} pour {reward}",
      locked_aria: "{reward} : {why}",
      press_confirm: "Appuyez sur Confirmer pour dépenser {cost}.",
      redeem_failed: "Impossible d’échanger {reward}.",
      please_retry: "Veuillez réessayer.",
      redeemed: "Vous avez obtenu {reward}.",
      activating: "Activation de votre code en boutique…",
      redeemed_activating: "Vous avez obtenu {reward}. Activation de votre code en boutique…",
      store_failed: "Vous avez obtenu {reward}, mais la boutique n’a pas pu activer le code.",
      points_safe: "Contactez-nous : vos points sont en sécurité.",
      store_failed_short: "La boutique n’a pas pu activer votre code pour {reward}.",
      redeemed_code: "Vous avez obtenu {reward}. Votre code est {code}.",
      still_activating: "La boutique peut mettre quelques minutes de plus à l’accepter.",
      your_code_is: "Votre code est",
      copy_code: "Copier le code",
      copy_code_aria: "Copier le code {code}",
      code_copied: "Code copié",
      use_by: "À utiliser avant le {date}.",
      copy_by_hand: "Sélectionnez le texte et copiez-le vous-même.",
      share_heading: "Parrainez et gagnez",
      share_label: "Votre lien de parrainage — vos amis reçoivent une récompense de bienvenue",
      copy_link: "Copier le lien",
      link_copied: "Lien copié dans le presse-papiers",
      clicks: { one: "{n} clic", other: "{n} clics" },
      friends_joined: { one: "{n} ami inscrit", other: "{n} amis inscrits" },
      points_earned: { one: "{n} point gagné", other: "{n} points gagnés" },
      share_on: "Partagez votre lien",
      share_subject: "Une récompense de bienvenue pour toi",
      share_text: "Voici une récompense de bienvenue pour ta première commande : {url}",
      share_email: "E-mail",
      share_sms: "SMS",
      share_whatsapp: "WhatsApp",
      share_x: "X",
      share_facebook: "Facebook",
      share_more: "Plus d’options",
      share_aria: "Partager par {via}",
      activity: "Activité récente",
      activity_label: "Mouvements de points récents",
      entry_order: "Commande {id}",
      entry_redeem: "Échange : {reward}",
      a_reward: "une récompense",
      entry_redeem_cancel: "Échange annulé",
      entry_referral: "Récompense de parrainage",
      entry_expire: "Points expirés",
      entry_refund: "Remboursement",
      entry_bonus: "Bonus",
      entry_adjust: "Ajustement",
      entry_earn: "Points gagnés",
      entry_pending: "en attente",
      codes_heading: "Vos codes de réduction",
      codes_label: "Vos codes de réduction",
      status_issued: "Prêt à l’emploi",
      status_used: "Utilisé",
      status_canceled: "Annulé",
      status_expired: "Expiré",
      code_expires: "À utiliser avant le {date}",
      code_used: "Utilisé le {date}",
      code_canceled: "Annulé le {date}",
      code_expired: "Expiré le {date}",
      kind_amount_off: "{amount} de réduction",
      kind_percent_off: "{percent} de réduction",
      kind_free_shipping: "Livraison offerte",
      kind_free_product: "Produit offert",
      cancel_code: "Annuler",
      cancel_code_aria: "Annuler le code {code}",
      cancel_question: "Annuler ce code ? {points} reviendront sur votre solde.",
      cancel_yes: "Oui, l’annuler",
      cancel_no: "Le garder",
      canceled_notice: "Code annulé : {points} sont de retour sur votre solde.",
      cancel_failed: "Impossible d’annuler le code.",
      gc_heading: "Solde de carte cadeau",
      gc_label: "Code de la carte cadeau",
      gc_check: "Voir le solde",
      gc_card: "Carte se terminant par {last4}",
      gc_balance: "Solde : {amount}",
      gc_expires: "Valable jusqu’au {date}",
      gc_no_expiry: "Sans date d’expiration",
      gc_not_found: "Aucune carte cadeau ne correspond à ce code. Vérifiez-le et réessayez.",
      gc_locked: { one: "Trop d’essais. Réessayez dans {n} minute.",
                   other: "Trop d’essais. Réessayez dans {n} minutes." },
      gc_failed: "Impossible de vérifier le solde pour le moment.",
      gc_empty: "Saisissez le code imprimé sur votre carte cadeau.",
      ck_heading: "Utiliser des points sur cette commande",
      ck_label: "Points à utiliser",
      ck_value: "{points} = {amount} de réduction",
      ck_range: "Entre {min} et {max} points sur ce panier",
      ck_apply: "Appliquer {amount} de réduction",
      ck_not_enough: "Cumulez {points} pour les utiliser sur une commande.",
      ck_cart_too_small: "Votre panier est trop petit pour utiliser des points.",
      ck_done: "Votre code pour {amount} de réduction sur cette commande :",
      ck_failed: "Impossible de créer votre réduction.",
      err_points: "Vous n’avez pas assez de points pour cela.",
      err_busy: "Trop d’essais. Patientez un instant puis réessayez.",
      err_changed: "Cela a changé entre-temps : rechargez la page pour voir l’état actuel.",
      err_unavailable: "Ce n’est plus disponible.",
      err_invalid: "Ce montant ne peut pas être utilisé sur ce panier.",
      ck_valid: "Saisissez-le au paiement. Inutilisé, il redevient des points le {date}.",
    },
    de: {
      loading: "Deine Prämien werden geladen…",
      session_expired: "Deine Sitzung ist abgelaufen. Lade die Seite neu, um deine Prämien zu sehen.",
      load_failed: "Deine Prämien können gerade nicht geladen werden.",
      try_again: "Erneut versuchen",
      region: "Treueprogramm",
      eyebrow: "Prämien",
      greeting: "Hallo {name}, hier ist dein Punktestand",
      your_balance: "Dein Punktestand",
      points_unit: { one: "Punkt", other: "Punkte" },
      points: { one: "{n} Punkt", other: "{n} Punkte" },
      pending: "+ {n} ausstehend — verfügbar nach Ablauf der Rückgabefrist",
      your_tier: "Deine Stufe",
      next_tier: "Nächste: {tier}",
      member: "Mitglied",
      status_through: "Status gültig bis {date}",
      progress_label: "Fortschritt zu {tier}",
      progress_value: "{spent} von {threshold} ausgegeben",
      progress_text: "{spent} von {threshold} · noch {remaining} bis zur Stufe {tier}.",
      progress_value_count: "{spent} von {threshold}",
      progress_text_count: "{spent} von {threshold} · noch {remaining} bis zur Stufe {tier}.",
      orders: { one: "{n} Bestellung", other: "{n} Bestellungen" },
      top_tier: "Du hast unsere höchste Stufe erreicht. Vielen Dank!",
      perks: "Vorteile der Stufe {tier}",
      tier: "Stufe",
      rewards: "Prämien",
      no_rewards: "Noch keine Prämien — schau bald wieder vorbei.",
      tier_only: "Nur für {tier}-Mitglieder",
      higher_tier: "Eine höhere Stufe",
      out_of_stock: "Ausverkauft",
      already_redeemed: "Bereits eingelöst",
      not_available: "Nicht verfügbar",
      more_points: { one: "Noch {n} Punkt", other: "Noch {n} Punkte" },
      redeem: "Einlösen",
      confirm: "Bestätigen",
      locked: "Gesperrt",
      redeem_aria: "{reward} für {cost} einlösen",
      confirm_aria: "Bestätigen: {cost} für {reward} ausgeben",
      locked_aria: "{reward}: {why}",
      press_confirm: "Drücke auf Bestätigen, um {cost} auszugeben.",
      redeem_failed: "{reward} konnte nicht eingelöst werden.",
      please_retry: "Bitte versuche es erneut.",
      redeemed: "Du hast {reward} eingelöst.",
      activating: "Dein Code wird im Shop aktiviert…",
      redeemed_activating: "Du hast {reward} eingelöst. Dein Code wird im Shop aktiviert…",
      store_failed: "Du hast {reward} eingelöst, aber der Shop konnte den Code nicht aktivieren.",
      points_safe: "Bitte kontaktiere uns: Deine Punkte sind sicher.",
      store_failed_short: "Der Shop konnte deinen Code für {reward} nicht aktivieren.",
      redeemed_code: "Du hast {reward} eingelöst. Dein Code lautet {code}.",
      still_activating: "Es kann noch ein paar Minuten dauern, bis der Shop ihn annimmt.",
      your_code_is: "Dein Code lautet",
      copy_code: "Code kopieren",
      copy_code_aria: "Code {code} kopieren",
      code_copied: "Code kopiert",
      use_by: "Löse ihn bis zum {date} an der Kasse ein.",
      copy_by_hand: "Markiere den Text und kopiere ihn von Hand.",
      share_heading: "Empfehlen und Punkte sammeln",
      share_label: "Dein Empfehlungslink — Freundinnen und Freunde erhalten ein Willkommensgeschenk",
      copy_link: "Link kopieren",
      link_copied: "Link in die Zwischenablage kopiert",
      clicks: { one: "{n} Klick", other: "{n} Klicks" },
      friends_joined: { one: "{n} Empfehlung angemeldet", other: "{n} Empfehlungen angemeldet" },
      points_earned: { one: "{n} Punkt gesammelt", other: "{n} Punkte gesammelt" },
      share_on: "Deinen Link teilen",
      share_subject: "Ein Willkommensgeschenk für dich",
      share_text: "Hier ist ein Willkommensgeschenk für deine erste Bestellung: {url}",
      share_email: "E-Mail",
      share_sms: "SMS",
      share_whatsapp: "WhatsApp",
      share_x: "X",
      share_facebook: "Facebook",
      share_more: "Weitere Möglichkeiten",
      share_aria: "Per {via} teilen",
      activity: "Letzte Aktivitäten",
      activity_label: "Letzte Punktebewegungen",
      entry_order: "Bestellung {id}",
      entry_redeem: "Eingelöst: {reward}",
      a_reward: "eine Prämie",
      entry_redeem_cancel: "Einlösung storniert",
      entry_referral: "Empfehlungsprämie",
      entry_expire: "Punkte verfallen",
      entry_refund: "Erstattung",
      entry_bonus: "Bonus",
      entry_adjust: "Korrektur",
      entry_earn: "Punkte gesammelt",
      entry_pending: "ausstehend",
      codes_heading: "Deine Gutscheincodes",
      codes_label: "Deine Gutscheincodes",
      status_issued: "Einlösbar",
      status_used: "Eingelöst",
      status_canceled: "Storniert",
      status_expired: "Abgelaufen",
      code_expires: "Gültig bis {date}",
      code_used: "Eingelöst am {date}",
      code_canceled: "Storniert am {date}",
      code_expired: "Abgelaufen am {date}",
      kind_amount_off: "{amount} Rabatt",
      kind_percent_off: "{percent} Rabatt",
      kind_free_shipping: "Kostenloser Versand",
      kind_free_product: "Gratisprodukt",
      cancel_code: "Stornieren",
      cancel_code_aria: "Code {code} stornieren",
      cancel_question: "Diesen Code stornieren? {points} werden deinem Punktestand gutgeschrieben.",
      cancel_yes: "Ja, stornieren",
      cancel_no: "Behalten",
      canceled_notice: "Code storniert: {points} wurden deinem Punktestand gutgeschrieben.",
      cancel_failed: "Der Code konnte nicht storniert werden.",
      gc_heading: "Geschenkkartenguthaben",
      gc_label: "Geschenkkartencode",
      gc_check: "Guthaben abfragen",
      gc_card: "Karte mit der Endung {last4}",
      gc_balance: "Guthaben: {amount}",
      gc_expires: "Gültig bis {date}",
      gc_no_expiry: "Unbegrenzt gültig",
      gc_not_found: "Zu diesem Code haben wir keine Geschenkkarte gefunden. Bitte prüfe ihn und versuche es erneut.",
      gc_locked: { one: "Zu viele Versuche. Bitte versuche es in {n} Minute erneut.",
                   other: "Zu viele Versuche. Bitte versuche es in {n} Minuten erneut." },
      gc_failed: "Das Guthaben kann gerade nicht abgefragt werden.",
      gc_empty: "Gib den Code ein, der auf deiner Geschenkkarte steht.",
      ck_heading: "Punkte für diese Bestellung einsetzen",
      ck_label: "Einzusetzende Punkte",
      ck_value: "{points} = {amount} Rabatt",
      ck_range: "Zwischen {min} und {max} Punkten für diesen Warenkorb",
      ck_apply: "{amount} Rabatt einlösen",
      ck_not_enough: "Sammle {points}, um sie bei einer Bestellung einzusetzen.",
      ck_cart_too_small: "Dein Warenkorb ist zu klein, um Punkte einzusetzen.",
      ck_done: "Dein Code für {amount} Rabatt auf diese Bestellung:",
      ck_failed: "Dein Rabatt konnte nicht erstellt werden.",
      err_points: "Dafür hast du nicht genug Punkte.",
      err_busy: "Zu viele Versuche. Bitte warte einen Moment und versuche es erneut.",
      err_changed: "Das hat sich inzwischen geändert: Lade die Seite neu, um den aktuellen Stand zu sehen.",
      err_unavailable: "Das ist nicht mehr verfügbar.",
      err_invalid: "Das kann für diesen Warenkorb nicht verwendet werden.",
      ck_valid: "Gib ihn an der Kasse ein. Unbenutzt wird er am {date} wieder zu Punkten.",
    },
    es: {
      loading: "Cargando tus recompensas…",
      session_expired: "Tu sesión ha caducado. Vuelve a cargar la página para ver tus recompensas.",
      load_failed: "No hemos podido cargar tus recompensas en este momento.",
      try_again: "Reintentar",
      region: "Programa de fidelidad",
      eyebrow: "Recompensas",
      greeting: "Hola, {name}: este es tu saldo",
      your_balance: "Tu saldo",
      points_unit: { one: "punto", other: "puntos" },
      points: { one: "{n} punto", other: "{n} puntos" },
      pending: "+ {n} pendientes — disponibles tras el plazo de devolución",
      your_tier: "Tu nivel",
      next_tier: "Siguiente: {tier}",
      member: "Miembro",
      status_through: "Estado válido hasta el {date}",
      progress_label: "Progreso hacia {tier}",
      progress_value: "{spent} de {threshold} gastados",
      progress_text: "{spent} de {threshold} · gasta {remaining} más para llegar a {tier}.",
      progress_value_count: "{spent} de {threshold}",
      progress_text_count: "{spent} de {threshold} · {remaining} más para llegar a {tier}.",
      orders: { one: "{n} pedido", other: "{n} pedidos" },
      top_tier: "Has alcanzado nuestro nivel más alto. ¡Gracias!",
      perks: "Ventajas de {tier}",
      tier: "Nivel",
      rewards: "Recompensas",
      no_rewards: "Aún no hay recompensas: vuelve pronto.",
      tier_only: "Solo para miembros {tier}",
      higher_tier: "un nivel superior",
      out_of_stock: "Agotada",
      already_redeemed: "Ya canjeada",
      not_available: "No disponible",
      more_points: { one: "{n} punto más", other: "{n} puntos más" },
      redeem: "Canjear",
      confirm: "Confirmar",
      locked: "Bloqueada",
      redeem_aria: "Canjear {reward} por {cost}",
      confirm_aria: "Confirmar: gastar {cost} en {reward}",
      locked_aria: "{reward}: {why}",
      press_confirm: "Pulsa Confirmar para gastar {cost}.",
      redeem_failed: "No se ha podido canjear {reward}.",
      please_retry: "Inténtalo de nuevo.",
      redeemed: "Has canjeado {reward}.",
      activating: "Activando tu código en la tienda…",
      redeemed_activating: "Has canjeado {reward}. Activando tu código en la tienda…",
      store_failed: "Has canjeado {reward}, pero la tienda no ha podido activar el código.",
      points_safe: "Ponte en contacto con nosotros: tus puntos están a salvo.",
      store_failed_short: "La tienda no ha podido activar tu código de {reward}.",
      redeemed_code: "Has canjeado {reward}. Tu código es {code}.",
      still_activating: "La tienda puede tardar unos minutos más en aceptarlo.",
      your_code_is: "Tu código es",
      copy_code: "Copiar código",
      copy_code_aria: "Copiar el código {code}",
      code_copied: "Código copiado",
      use_by: "Úsalo al pagar antes del {date}.",
      copy_by_hand: "Selecciona el texto y cópialo a mano.",
      share_heading: "Comparte y gana",
      share_label: "Tu enlace de invitación: tus amigos reciben un regalo de bienvenida",
      copy_link: "Copiar enlace",
      link_copied: "Enlace copiado al portapapeles",
      clicks: { one: "{n} clic", other: "{n} clics" },
      friends_joined: { one: "{n} amigo se ha unido", other: "{n} amigos se han unido" },
      points_earned: { one: "{n} punto ganado", other: "{n} puntos ganados" },
      share_on: "Comparte tu enlace",
      share_subject: "Un regalo de bienvenida para ti",
      share_text: "Aquí tienes un regalo de bienvenida para tu primer pedido: {url}",
      share_email: "Correo",
      share_sms: "SMS",
      share_whatsapp: "WhatsApp",
      share_x: "X",
      share_facebook: "Facebook",
      share_more: "Más opciones",
      share_aria: "Compartir por {via}",
      activity: "Actividad reciente",
      activity_label: "Movimientos de puntos recientes",
      entry_order: "Pedido {id}",
      entry_redeem: "Canje: {reward}",
      a_reward: "una recompensa",
      entry_redeem_cancel: "Canje cancelado",
      entry_referral: "Recompensa por invitación",
      entry_expire: "Puntos caducados",
      entry_refund: "Reembolso",
      entry_bonus: "Bonificación",
      entry_adjust: "Ajuste",
      entry_earn: "Puntos ganados",
      entry_pending: "pendiente",
      codes_heading: "Tus códigos de descuento",
      codes_label: "Tus códigos de descuento",
      status_issued: "Listo para usar",
      status_used: "Usado",
      status_canceled: "Cancelado",
      status_expired: "Caducado",
      code_expires: "Úsalo antes del {date}",
      code_used: "Usado el {date}",
      code_canceled: "Cancelado el {date}",
      code_expired: "Caducó el {date}",
      kind_amount_off: "{amount} de descuento",
      kind_percent_off: "{percent} de descuento",
      kind_free_shipping: "Envío gratis",
      kind_free_product: "Producto gratis",
      cancel_code: "Cancelar",
      cancel_code_aria: "Cancelar el código {code}",
      cancel_question: "¿Cancelar este código? {points} vuelven a tu saldo.",
      cancel_yes: "Sí, cancelarlo",
      cancel_no: "Conservarlo",
      canceled_notice: "Código cancelado: {points} han vuelto a tu saldo.",
      cancel_failed: "No se ha podido cancelar el código.",
      gc_heading: "Saldo de tarjeta regalo",
      gc_label: "Código de la tarjeta regalo",
      gc_check: "Consultar saldo",
      gc_card: "Tarjeta terminada en {last4}",
      gc_balance: "Saldo: {amount}",
      gc_expires: "Válida hasta el {date}",
      gc_no_expiry: "No caduca",
      gc_not_found: "No encontramos ninguna tarjeta regalo con ese código. Revísalo e inténtalo de nuevo.",
      gc_locked: { one: "Demasiados intentos. Vuelve a intentarlo dentro de {n} minuto.",
                   other: "Demasiados intentos. Vuelve a intentarlo dentro de {n} minutos." },
      gc_failed: "No hemos podido consultar el saldo en este momento.",
      gc_empty: "Escribe el código impreso en tu tarjeta regalo.",
      ck_heading: "Usa puntos en este pedido",
      ck_label: "Puntos que quieres usar",
      ck_value: "{points} = {amount} de descuento",
      ck_range: "Entre {min} y {max} puntos en este carrito",
      ck_apply: "Aplicar {amount} de descuento",
      ck_not_enough: "Acumula {points} para usarlos en un pedido.",
      ck_cart_too_small: "Tu carrito es demasiado pequeño para usar puntos.",
      ck_done: "Tu código de {amount} de descuento para este pedido:",
      ck_failed: "No se ha podido crear tu descuento.",
      err_points: "No tienes puntos suficientes para esto.",
      err_busy: "Demasiados intentos. Espera un momento y vuelve a intentarlo.",
      err_changed: "Esto ha cambiado mientras tanto: vuelve a cargar la página para verlo actualizado.",
      err_unavailable: "Ya no está disponible.",
      err_invalid: "No se puede usar en este carrito.",
      ck_valid: "Introdúcelo al pagar. Si no lo usas, vuelve a ser puntos el {date}.",
    },
  };

  var STYLE = [
    ":host{all:initial;display:block;font-family:system-ui,-apple-system,'Segoe UI',Roboto,",
    "'Helvetica Neue',Arial,sans-serif;font-size:16px;line-height:1.45;color:#1c1b22;",
    "--accent:var(--loyalty-accent,#7a2e4d);--radius:var(--loyalty-radius,14px);}",
    "*{box-sizing:border-box}",
    ".card{background:#fff;border:1px solid #e7e3e8;border-radius:var(--radius);",
    "box-shadow:0 6px 24px rgba(28,27,34,.07);overflow:hidden;max-width:100%;overflow-wrap:break-word;",
    "-webkit-hyphens:auto;hyphens:auto}",
    ".code,input,button{-webkit-hyphens:manual;hyphens:manual}",
    ".head{background:linear-gradient(135deg,var(--accent),#3d1730);color:#fff;padding:20px 22px 18px}",
    ".eyebrow{margin:0;font-size:.78rem;letter-spacing:.08em;text-transform:uppercase;opacity:.85}",
    ".title{margin:2px 0 14px;font-size:1.15rem;font-weight:600}",
    ".balance{display:flex;align-items:baseline;gap:8px;margin:0;flex-wrap:wrap}",
    ".points{font-size:2.4rem;font-weight:700;letter-spacing:-.02em;line-height:1}",
    ".unit{font-size:1rem;opacity:.9}",
    ".pending{margin:8px 0 0;font-size:.88rem;opacity:.9}",
    ".section{padding:18px 22px;border-top:1px solid #efecf0}",
    ".section:first-of-type{border-top:0}",
    "h3{margin:0 0 10px;font-size:.95rem;font-weight:650;color:#1c1b22}",
    ".tier-row{display:flex;justify-content:space-between;align-items:center;gap:8px;flex-wrap:wrap}",
    ".badge{display:inline-block;padding:3px 10px;border-radius:999px;background:#f4e9ee;",
    "color:var(--accent);font-weight:650;font-size:.85rem}",
    ".muted{color:#5f5a66;font-size:.88rem;margin:0}",
    ".bar{height:10px;border-radius:999px;background:#efe9ee;margin:12px 0 8px;overflow:hidden}",
    ".fill{height:100%;border-radius:999px;background:var(--accent);transition:width .4s ease}",
    "ul{list-style:none;margin:0;padding:0;display:grid;grid-template-columns:minmax(0,1fr);gap:10px}",
    ".reward{display:flex;align-items:center;justify-content:space-between;gap:12px;",
    "padding:12px 14px;border:1px solid #ece8ed;border-radius:10px}",
    ".reward>div{min-width:0}",
    ".reward.locked{background:#faf9fb}",
    ".reward-name{font-weight:600;margin:0}",
    ".reward-cost{margin:2px 0 0;font-size:.85rem;color:#5f5a66}",
    "button,.share a{font:inherit;font-size:.9rem;font-weight:600;cursor:pointer;border-radius:999px;",
    "min-height:44px;min-width:44px;padding:6px 18px;border:1px solid var(--accent);",
    "background:var(--accent);color:#fff;text-align:center;line-height:1.2;max-width:100%;",
    "overflow-wrap:normal}",
    ".reward>button,.code-foot>button{flex:none}",
    "button.secondary{background:#fff;color:var(--accent)}",
    "button:hover:not(:disabled){filter:brightness(1.08)}",
    "button:focus-visible,input:focus-visible,a:focus-visible{outline:3px solid #b9a1ff;outline-offset:2px}",
    "button:disabled{cursor:not-allowed;background:#eeeaef;border-color:#eeeaef;color:#6b6571}",
    ".result{margin:0}",
    ".result:empty{display:none}",
    ".notice{margin-top:12px;padding:12px 14px;border-radius:10px;background:#eef8f1;",
    "border:1px solid #cfe9d7;color:#17462a}",
    ".notice.error{background:#fdf0f0;border-color:#f3cccc;color:#7a1f1f}",
    ".notice p{margin:6px 0 0}",
    ".code-row{display:flex;align-items:center;gap:10px;flex-wrap:wrap;margin-top:8px}",
    ".code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:1.1rem;",
    "font-weight:700;letter-spacing:.06em;padding:6px 10px;background:#fff;border-radius:8px;",
    "border:1px dashed #8fbf9f;overflow-wrap:anywhere}",
    "label{display:block;font-size:.85rem;color:#5f5a66;margin-bottom:6px}",
    ".copy-row{display:flex;gap:8px;flex-wrap:wrap}",
    ".copy-row input{flex:1 1 8rem}",
    "input{font:inherit;font-size:.9rem;flex:1;min-width:0;min-height:44px;padding:0 12px;",
    "border:1px solid #d9d3db;border-radius:10px;background:#faf9fb;color:#1c1b22}",
    ".stats{display:flex;gap:8px 16px;margin:10px 0 0;flex-wrap:wrap}",
    ".copied{font-size:.85rem;color:#17462a;margin:6px 0 0}",
    ".copied:empty{margin:0}",
    ".strong{color:#1c1b22;font-weight:650}",
    ".tier-row h3{margin:0}",
    ".tier-row+.tier-row{margin-top:10px}",
    ".perks{display:flex;flex-wrap:wrap;gap:6px;margin-top:12px}",
    ".perks li{font-size:.8rem;color:#4a4450;background:#f6f4f7;border-radius:999px;padding:3px 10px}",
    ".perks li::before{content:'\\2713\\00a0';color:var(--accent)}",
    ".reward-why{margin:2px 0 0;font-size:.8rem;color:#8a5a6e}",
    ".stats span{background:#f6f4f7;border-radius:999px;padding:3px 10px;font-size:.8rem}",
    ".share{display:flex;flex-wrap:wrap;gap:8px;margin-top:12px}",
    ".share a,.share button{display:inline-flex;align-items:center;justify-content:center;",
    "text-decoration:none;background:#fff;color:var(--accent);padding:6px 14px}",
    "details{margin:0}",
    "summary{cursor:pointer;font-weight:650;font-size:.95rem;min-height:28px;list-style-position:inside}",
    "summary:focus-visible{outline:3px solid #b9a1ff;outline-offset:2px;border-radius:6px}",
    ".activity{margin-top:12px;gap:0}",
    ".activity li{display:flex;justify-content:space-between;gap:12px;padding:9px 0;",
    "border-top:1px solid #f1eef2;font-size:.88rem}",
    ".activity li>span:first-child{min-width:0}",
    ".activity li:first-child{border-top:0}",
    ".plus{color:#17663a;font-weight:650;white-space:nowrap;unicode-bidi:isolate}",
    ".minus{color:#7a1f1f;font-weight:650;white-space:nowrap;unicode-bidi:isolate}",
    ".codes li{padding:12px 14px;border:1px solid #ece8ed;border-radius:10px}",
    ".codes li.done{background:#faf9fb;color:#5f5a66}",
    ".code-head{display:flex;justify-content:space-between;align-items:center;gap:8px;flex-wrap:wrap}",
    ".codes .code{font-size:.95rem;padding:2px 8px}",
    ".codes li.done .code{border-color:#d9d3db;text-decoration:line-through}",
    ".status{display:inline-block;padding:2px 9px;border-radius:999px;font-size:.78rem;font-weight:650}",
    ".status.issued{background:#eef8f1;color:#17462a}",
    ".status.used{background:#eef1f8;color:#23325e}",
    ".status.canceled,.status.expired{background:#f3f1f4;color:#5f5a66}",
    ".code-foot{display:flex;justify-content:space-between;align-items:center;gap:8px;",
    "flex-wrap:wrap;margin-top:8px}",
    ".ask{margin-top:10px;padding:10px 12px;border-radius:10px;background:#fff8ec;border:1px solid #f0dcb6}",
    ".ask p{margin:0 0 8px;font-size:.88rem}",
    ".buttons{display:flex;gap:8px;flex-wrap:wrap}",
    ".gift{display:grid;gap:4px}",
    ".gift .amount{font-size:1.4rem;font-weight:700;margin:0}",
    "input[type=range]{width:100%;min-height:44px;padding:0;background:none;border:0;accent-color:var(--accent)}",
    ".slider-value{font-size:1.15rem;font-weight:700;margin:0}",
    ".slider-range{margin-bottom:12px}",
    ".loading,.failed{padding:22px;color:#5f5a66}",
    ".sr{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;",
    "clip:rect(0,0,0,0);white-space:nowrap;border:0}",
    "@media (max-width:420px){.head,.section{padding-left:16px;padding-right:16px}",
    ".points{font-size:2rem}.reward{flex-direction:column;align-items:stretch}}",
    "@media (prefers-reduced-motion:reduce){.fill{transition:none}}",
  ].join("");

  // Build elements from plain values: every shopper-facing string goes through textContent.
  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "text") node.textContent = value;
      else if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  // --- Language and formats ---------------------------------------------------------------

  // The shipped language for a tag: "fr-CA" reads French, "pt-BR" English.
  function languageOf(tag) {
    var primary = String(tag || "").trim().toLowerCase().split(/[-_]/)[0];
    return Object.prototype.hasOwnProperty.call(MESSAGES, primary) ? primary : DEFAULT_LANGUAGE;
  }

  // What Intl formats with: the tag itself when its language is shipped (fr-CA's own number and
  // date forms), else English, so words and numbers never come from two languages.
  function formatLocale(tag, language) {
    if (!tag || languageOf(tag) !== language) return language;
    try {
      return Intl.NumberFormat.supportedLocalesOf([String(tag)]).length ? String(tag) : language;
    } catch (e) {
      return language;
    }
  }

  function Messages(tag) {
    this.language = languageOf(tag);
    this.locale = formatLocale(tag, this.language);
    this.table = MESSAGES[this.language];
    this.plurals = new Intl.PluralRules(this.locale);
    this.isolate = false;
  }

  // The message `key` with its `{name}`s filled in; `count` picks the plural form. On a
  // right-to-left page each value is isolated (FSI … PDI), so that "122,00 $US" or a reward's
  // name keeps its own order inside the sentence.
  Messages.prototype.t = function (key, params, count) {
    var message = this.table[key];
    var isolate = this.isolate;
    if (message === undefined) message = MESSAGES[DEFAULT_LANGUAGE][key];
    if (typeof message === "object") {
      message = message[this.plurals.select(count === undefined ? 0 : count)] || message.other;
    }
    return String(message).replace(/\{(\w+)\}/g, function (whole, name) {
      if (!params || params[name] === undefined) return whole;
      return isolate ? "\u2068" + params[name] + "\u2069" : String(params[name]);
    });
  };

  // The same, as nodes: parameters that are elements (a bold amount) are put in place.
  Messages.prototype.nodes = function (key, params, count) {
    var parts = [];
    var text = this.t(key, {}, count);
    var last = 0;
    text.replace(/\{(\w+)\}/g, function (whole, name, at) {
      if (at > last) parts.push(text.slice(last, at));
      var value = params[name];
      parts.push(value instanceof Node ? value : String(value === undefined ? whole : value));
      last = at + whole.length;
      return whole;
    });
    if (last < text.length) parts.push(text.slice(last));
    return parts;
  };

  function idempotencyKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function ApiError(status, problem, headers) {
    this.status = status;
    this.problem = problem || {};
    this.retryAfter = headers ? parseInt(headers.get("Retry-After") || "", 10) || 0 : 0;
    this.message = this.problem.detail || this.problem.title || "Request failed (" + status + ")";
  }

  // A decimal string ("0.25") as an exact fraction, so that points × value is the server's
  // floor(points × value_per_point) to the minor unit, never off by a float's rounding.
  function fraction(decimal) {
    var match = /^(\d+)(?:\.(\d+))?$/.exec(String(decimal || "0"));
    if (!match) return { num: 0, den: 1 };
    var places = match[2] || "";
    return { num: parseInt(match[1] + places, 10), den: Math.pow(10, places.length) };
  }

  function Widget(host, options) {
    this.host = host;
    this.api = String(options.api || "").replace(/\/+$/, "");
    this.token = options.token || "";
    this.getToken = options.getToken || null;
    this.i18n = new Messages(options.locale || host.getAttribute("data-locale") ||
      (host.closest("[lang]") || document.documentElement).getAttribute("lang") || "");
    this.locale = this.i18n.locale;
    this.i18n.isolate = getComputedStyle(host).direction === "rtl";
    var subtotal = options.cartSubtotal !== undefined && options.cartSubtotal !== null
      ? options.cartSubtotal : host.getAttribute("data-cart-subtotal");
    subtotal = parseInt(subtotal, 10);
    this.cartSubtotal = subtotal > 0 ? subtotal : null;
    this.root = host.shadowRoot || host.attachShadow({ mode: "open" });
    this.state = { me: null, rewards: null, referrals: null, armed: null, busy: false,
      codes: null, cancelArmed: null, checkout: null, sliderPoints: null };
    this.root.innerHTML = "";
    this.root.appendChild(h("style", { text: STYLE }));
    // The panel's direction is its language's: on a right-to-left page, text in a left-to-right
    // language still reads left to right (the values in it isolated, see Messages.t).
    this.view = h("div", { class: "card", role: "region", "aria-label": this.t("region"),
      lang: this.i18n.language, dir: RTL_LANGUAGES.indexOf(this.i18n.language) >= 0 ? "rtl" : "ltr" });
    this.root.appendChild(this.view);
    // One live region that stays put while the panel re-renders, so screen readers hear results.
    this.announcer = h("div", { class: "sr", role: "status", "aria-live": "polite" });
    this.root.appendChild(this.announcer);
    this.view.appendChild(h("p", { class: "loading", role: "status", text: this.t("loading") }));
  }

  Widget.prototype.t = function (key, params, count) {
    return this.i18n.t(key, params, count);
  };

  // "1,250 points" / "1 250 points" / "1.250 Punkte": the number formatted, the word agreeing.
  Widget.prototype.points = function (n) {
    return this.t("points", { n: this.fmtNumber(n) }, n);
  };

  Widget.prototype.request = function (method, path, body, retried) {
    var self = this;
    var headers = { Authorization: "Bearer " + self.token, Accept: "application/json" };
    var init = { method: method, headers: headers, mode: "cors", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["Idempotency-Key"] = idempotencyKey();
      init.body = JSON.stringify(body);
    }
    var sentWith = self.token;
    return fetch(self.api + path, init).then(function (res) {
      if (res.status === 401 && self.getToken && !retried) {
        // Parallel requests that all met the expired token share one renewal.
        if (self.token === sentWith && !self.renewing) {
          self.renewing = Promise.resolve(self.getToken()).then(function (token) {
            self.token = token;
          }).finally(function () { self.renewing = null; });
        }
        return Promise.resolve(self.renewing).then(function () {
          return self.request(method, path, body, true);
        });
      }
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!res.ok) throw new ApiError(res.status, data, res.headers);
        return data;
      });
    });
  };

  // A section whose endpoint fails is left out, and the rest of the panel still shows. An
  // endpoint this installation doesn't offer is a 404 — or, cross-origin, a failed preflight.
  function optional(promise) {
    return promise.catch(function (error) {
      if (error instanceof ApiError && error.status === 401) throw error;
      return null;
    });
  }

  Widget.prototype.checkoutPath = function () {
    return "/v1/me/checkout-points?cart_subtotal=" + encodeURIComponent(this.cartSubtotal);
  };

  Widget.prototype.load = function () {
    var self = this;
    var cart = self.cartSubtotal !== null;
    return Promise.all([
      self.request("GET", "/v1/me"),
      optional(self.request("GET", "/v1/me/rewards")),
      cart ? null : optional(self.request("GET", "/v1/me/referrals?limit=1")),
      cart ? null : optional(self.request("GET", "/v1/me/activity?limit=5")),
      optional(self.request("GET", "/v1/me/redemptions?limit=" + CODES_SHOWN)),
      cart ? optional(self.request("GET", self.checkoutPath())) : null,
    ]).then(function (results) {
      self.state.me = results[0];
      self.state.rewards = results[1] ? results[1].items || [] : null;
      self.state.referrals = results[2];
      self.state.activity = results[3] ? results[3].items || [] : null;
      self.state.codes = results[4] ? results[4].items || [] : null;
      self.state.checkout = results[5];
      self.render();
    }).catch(function (error) {
      self.fail(error);
    });
  };

  Widget.prototype.fail = function (error) {
    var self = this;
    var expired = error instanceof ApiError && error.status === 401;
    self.view.textContent = "";
    self.view.appendChild(h("div", { class: "failed", role: "alert" }, [
      h("p", { class: "muted", text: self.t(expired ? "session_expired" : "load_failed") }),
      expired ? null : h("button", { type: "button", class: "secondary", text: self.t("try_again"),
        onclick: function () { self.load(); } }),
    ]));
  };

  // Why a request was refused, in the shopper's language (the API's own `detail` is English).
  var PROBLEMS = {
    "insufficient-points": "err_points",
    "rate-limited": "err_busy",
    "conflict": "err_changed",
    "reward-unavailable": "err_unavailable",
    "validation-error": "err_invalid",
  };

  Widget.prototype.reason = function (error) {
    var type = error instanceof ApiError && error.problem ? error.problem.type : null;
    return this.t(PROBLEMS[type] || "please_retry");
  };

  Widget.prototype.announce = function (message) {
    this.announcer.textContent = message;
  };

  Widget.prototype.fmtNumber = function (n) {
    return new Intl.NumberFormat(this.locale).format(n);
  };

  Widget.prototype.fmtMoney = function (minor, currency) {
    currency = currency || (this.state.me && this.state.me.currency) || "USD";
    var format = new Intl.NumberFormat(this.locale, { style: "currency", currency: currency });
    var digits = format.resolvedOptions().maximumFractionDigits;
    return format.format(minor / Math.pow(10, digits));
  };

  Widget.prototype.fmtPercent = function (percent) {
    return new Intl.NumberFormat(this.locale, { style: "percent" }).format(percent / 100);
  };

  Widget.prototype.fmtDate = function (iso) {
    return new Intl.DateTimeFormat(this.locale, { dateStyle: "medium" }).format(new Date(iso));
  };

  Widget.prototype.render = function () {
    var me = this.state.me;
    var active = this.root.activeElement;
    var focused = active && active.getAttribute("data-focus");
    this.view.textContent = "";
    var points = me.points || {};
    var firstName = (me.name || "").split(" ")[0];
    this.view.appendChild(h("div", { class: "head" }, [
      h("p", { class: "eyebrow", text: this.t("eyebrow") }),
      h("h2", { class: "title", text: firstName ? this.t("greeting", { name: firstName }) : this.t("your_balance") }),
      h("p", { class: "balance" }, [
        h("span", { class: "points", "data-testid": "balance", text: this.fmtNumber(points.available || 0) }),
        h("span", { class: "unit", text: this.t("points_unit", {}, points.available || 0) }),
      ]),
      points.pending ? h("p", { class: "pending", "data-testid": "pending",
        text: this.t("pending", { n: this.fmtNumber(points.pending) }) }) : null,
    ]));
    var cart = this.cartSubtotal !== null;
    if (cart && this.state.checkout && this.state.checkout.enabled) this.view.appendChild(this.renderCheckout());
    if (!cart) this.view.appendChild(this.renderTier(me));
    if (this.state.rewards) this.view.appendChild(this.renderRewards());
    if (this.state.codes && this.state.codes.length) this.view.appendChild(this.renderCodes());
    var referral = cart ? null : this.renderReferral();
    if (referral) this.view.appendChild(referral);
    this.view.appendChild(this.renderGiftCard());
    if (this.state.activity && this.state.activity.length) this.view.appendChild(this.renderActivity());
    if (focused) {
      var again = this.root.querySelector('[data-focus="' + focused + '"]');
      if (again && !again.disabled) again.focus();
    }
  };

  Widget.prototype.renderTier = function (me) {
    var tier = me.tier || {};
    var next = me.next_tier;
    // Progress in the unit tiers count: spend (money), points earned or paid orders.
    var basis = me.tier_basis || "spend";
    var spend = basis === "spend" ? (me.qualifying_spend || 0) : (me.qualifying_value || 0);
    var self = this;
    var byMoney = basis === "spend";
    var amount = function (n) {
      if (basis === "points") return self.points(n);
      if (basis === "orders") return self.t("orders", { n: self.fmtNumber(n) }, n);
      return self.fmtMoney(n);
    };
    var remaining = next ? (next.remaining != null ? next.remaining : next.remaining_spend) : 0;
    var children = [
      h("div", { class: "tier-row" }, [
        h("h3", { id: "lw-tier-heading", text: this.t("your_tier") }),
        next ? h("span", { class: "muted", text: this.t("next_tier", { tier: next.name }) }) : null,
      ]),
      h("div", { class: "tier-row" }, [
        h("span", { class: "badge", "data-testid": "tier", dir: "auto", text: tier.name || this.t("member") }),
        tier.ends_at ? h("span", { class: "muted", text: this.t("status_through", { date: this.fmtDate(tier.ends_at) }) }) : null,
      ]),
    ];
    if (next) {
      var percent = next.threshold > 0 ? Math.min(100, Math.floor((spend / next.threshold) * 100)) : 100;
      children.push(h("div", {
        class: "bar", role: "progressbar", "aria-label": this.t("progress_label", { tier: next.name }),
        "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": percent,
        "aria-valuetext": this.t(byMoney ? "progress_value" : "progress_value_count", {
          spent: amount(spend), threshold: amount(next.threshold) }),
        "data-testid": "tier-progress",
      }, [h("div", { class: "fill", style: "width:" + percent + "%" })]));
      children.push(h("p", { class: "muted", "data-testid": "next-tier" }, this.i18n.nodes(
        byMoney ? "progress_text" : "progress_text_count", {
          spent: h("strong", { class: "strong", text: amount(spend) }),
          threshold: amount(next.threshold),
          remaining: amount(remaining),
          tier: next.name,
        })));
    } else {
      children.push(h("p", { class: "muted tier-top", text: this.t("top_tier") }));
    }
    if (tier.perks && tier.perks.length) {
      children.push(h("ul", { class: "perks", "aria-label": this.t("perks", { tier: tier.name || this.t("tier") }) },
        tier.perks.map(function (perk) { return h("li", { dir: "auto", text: perk }); })));
    }
    return h("section", { class: "section", "aria-labelledby": "lw-tier-heading" }, children);
  };

  function canRedeem(reward) {
    return reward.redeemable !== undefined ? !!reward.redeemable : !!reward.affordable;
  }

  Widget.prototype.lockedReason = function (reward) {
    switch (reward.unavailable_reason) {
      case "tier_required": return this.t("tier_only", { tier: reward.tier || this.t("higher_tier") });
      case "out_of_stock": return this.t("out_of_stock");
      case "limit_reached": return this.t("already_redeemed");
      default: return this.t("not_available");
    }
  };

  Widget.prototype.renderRewards = function () {
    var self = this;
    var available = (self.state.me.points || {}).available || 0;
    var items = self.state.rewards.slice().sort(function (a, b) {
      return (canRedeem(b) ? 1 : 0) - (canRedeem(a) ? 1 : 0) || a.points_cost - b.points_cost;
    });
    var list = h("ul", { "aria-label": self.t("rewards") }, items.map(function (reward) {
      var ok = canRedeem(reward);
      var armed = self.state.armed === reward.id;
      var cost = self.points(reward.points_cost);
      var reasons = [];
      if (reward.unavailable_reason) reasons.push(self.lockedReason(reward));
      if (!reward.affordable) {
        var short = Math.max(0, reward.points_cost - available);
        reasons.push(self.t("more_points", { n: self.fmtNumber(short) }, short));
      }
      var why = reasons.join(" · ");
      var button = h("button", {
        type: "button",
        "data-focus": "reward-" + reward.id,
        "data-testid": "redeem",
        disabled: !ok || self.state.busy,
        "aria-label": armed
          ? self.t("confirm_aria", { cost: cost, reward: reward.name })
          : (ok ? self.t("redeem_aria", { reward: reward.name, cost: cost })
            : self.t("locked_aria", { reward: reward.name, why: why })),
        text: self.t(!ok ? "locked" : (armed ? "confirm" : "redeem")),
        onclick: function () { self.redeemClicked(reward); },
        onkeydown: function (event) {
          if (event.key === "Escape" && self.state.armed === reward.id) {
            self.state.armed = null;
            self.render();
          }
        },
      });
      return h("li", { class: "reward" + (ok ? "" : " locked"), "data-testid": "reward",
        "data-reward-id": reward.id }, [
        h("div", {}, [
          h("p", { class: "reward-name", dir: "auto", text: reward.name }),
          h("p", { class: "reward-cost", text: cost }),
          ok ? null : h("p", { class: "reward-why", text: why }),
          armed ? h("p", { class: "reward-cost", text: self.t("press_confirm", { cost: cost }) }) : null,
        ]),
        button,
      ]);
    }));
    var result = h("div", { class: "result", "data-testid": "redeem-result" });
    if (self.lastResult) result.appendChild(self.lastResult);
    return h("section", { class: "section", "aria-labelledby": "lw-rewards-heading" }, [
      h("h3", { id: "lw-rewards-heading", text: self.t("rewards") }),
      items.length ? list : h("p", { class: "muted", text: self.t("no_rewards") }),
      result,
    ]);
  };

  Widget.prototype.redeemClicked = function (reward) {
    var self = this;
    if (self.state.busy) return;
    if (self.state.armed !== reward.id) {  // first press arms, second press spends
      self.state.armed = reward.id;
      self.lastResult = null;
      self.render();
      return;
    }
    self.state.busy = true;
    self.render();
    self.request("POST", "/v1/me/redemptions", { reward_id: reward.id }).then(function (redemption) {
      redemption = redemption || {};
      if (redemption.platform && redemption.platform.status === "pending") {
        // The code works at checkout only once the store has it: say so, and show it then.
        self.lastResult = self.activatingNotice(reward);
        self.announce(self.t("redeemed_activating", { reward: reward.name }));
        self.waitForStore(reward, redemption.id, ACTIVATION_POLLS);
      } else {
        self.showRedeemed(reward, redemption);
      }
      return self.refresh();
    }).catch(function (error) {
      self.announce(self.t("redeem_failed", { reward: reward.name }) + " " + self.reason(error));
      self.lastResult = h("div", { class: "notice error", role: "alert" }, [
        h("strong", { text: self.t("redeem_failed", { reward: reward.name }) + " " }),
        document.createTextNode(self.reason(error)),
      ]);
    }).then(function () {
      self.state.busy = false;
      self.state.armed = null;
      self.render();
      var notice = self.root.querySelector('[data-testid="redeem-result"] button');
      if (notice) notice.focus();
    });
  };

  Widget.prototype.showRedeemed = function (reward, redemption) {
    if (redemption.platform && redemption.platform.status === "failed") {
      this.lastResult = h("div", { class: "notice error", role: "alert", "data-testid": "code-failed" }, [
        h("strong", { text: this.t("store_failed", { reward: reward.name }) + " " }),
        document.createTextNode(this.t("points_safe")),
      ]);
      this.announce(this.t("store_failed_short", { reward: reward.name }));
      return;
    }
    this.lastResult = this.redeemedNotice(reward, redemption);
    this.announce(this.t("redeemed_code", { reward: reward.name, code: redemption.code }));
  };

  Widget.prototype.activatingNotice = function (reward) {
    return h("div", { class: "notice", role: "status", "data-testid": "code-activating" }, [
      h("strong", { text: this.t("redeemed", { reward: reward.name }) }),
      h("p", { class: "muted", text: this.t("activating") }),
    ]);
  };

  Widget.prototype.waitForStore = function (reward, redemptionId, left) {
    var self = this;
    setTimeout(function () {
      self.request("GET", "/v1/me/redemptions/" + redemptionId).then(function (redemption) {
        var status = redemption && redemption.platform && redemption.platform.status;
        if (status === "pending" && left > 1) return self.waitForStore(reward, redemptionId, left - 1);
        // Created, failed, or still pending after every try: show what there is.
        self.showRedeemed(reward, redemption || {});
        if (status === "pending") {
          self.lastResult.appendChild(h("p", { class: "muted", "data-testid": "code-still-activating",
            text: self.t("still_activating") }));
        }
        self.render();
      }).catch(function () {
        if (left > 1) self.waitForStore(reward, redemptionId, left - 1);
      });
    }, ACTIVATION_POLL_MS);
  };

  // A code with its copy button (a redemption's, or a points-at-checkout one's).
  Widget.prototype.codeRow = function (code) {
    var self = this;
    var copied = h("span", { class: "copied", "aria-live": "polite" });
    return h("div", { class: "code-row" }, [
      h("span", { class: "sr", text: self.t("your_code_is") + " " }),
      h("span", { class: "code", "data-testid": "reward-code", dir: "ltr", text: code }),
      h("button", { type: "button", class: "secondary", "aria-label": self.t("copy_code_aria", { code: code }),
        text: self.t("copy_code"), onclick: function () { self.copy(code, copied, self.t("code_copied")); } }),
      copied,
    ]);
  };

  Widget.prototype.redeemedNotice = function (reward, redemption) {
    return h("div", { class: "notice", "data-testid": "redeemed" }, [
      h("strong", { text: this.t("redeemed", { reward: reward.name }) }),
      this.codeRow(redemption.code || ""),
      redemption.expires_at ? h("p", { class: "muted", text: this.t("use_by", { date: this.fmtDate(redemption.expires_at) }) }) : null,
    ]);
  };

  // --- The member's reward codes, with a cancel for unused ones bought with points ----------

  Widget.prototype.codeName = function (code) {
    if (code.reward && code.reward.name) return code.reward.name;
    switch (code.kind) {
      case "amount_off": return this.t("kind_amount_off", { amount: this.fmtMoney(code.amount || 0) });
      case "percent_off": return this.t("kind_percent_off", { percent: this.fmtPercent(code.percent || 0) });
      case "free_shipping": return this.t("kind_free_shipping");
      default: return this.t("kind_free_product");
    }
  };

  // Its status as of now: an unused code past its expiry is expired, even before the job says so.
  function codeStatus(code) {
    if (code.status === "issued" && code.expires_at && new Date(code.expires_at) <= new Date()) {
      return "expired";
    }
    return code.status;
  }

  Widget.prototype.codeWhen = function (code, status) {
    switch (status) {
      case "issued": return code.expires_at ? this.t("code_expires", { date: this.fmtDate(code.expires_at) }) : "";
      case "used": return code.used_at ? this.t("code_used", { date: this.fmtDate(code.used_at) }) : "";
      case "canceled": return code.canceled_at ? this.t("code_canceled", { date: this.fmtDate(code.canceled_at) }) : "";
      default: return this.t("code_expired", { date: this.fmtDate(code.expired_at || code.expires_at) });
    }
  };

  Widget.prototype.renderCodes = function () {
    var self = this;
    var list = h("ul", { class: "codes", "aria-label": self.t("codes_label") }, self.state.codes.map(function (code) {
      var status = codeStatus(code);
      var cancelable = status === "issued" && code.points_spent > 0;
      var asking = self.state.cancelArmed === code.id;
      var ask = asking ? h("div", { class: "ask", role: "group", "data-testid": "cancel-confirm" }, [
        h("p", { text: self.t("cancel_question", { points: self.points(code.points_spent) }) }),
        h("div", { class: "buttons" }, [
          h("button", { type: "button", "data-focus": "cancel-yes-" + code.id, "data-testid": "cancel-yes",
            disabled: self.state.busy, text: self.t("cancel_yes"),
            onclick: function () { self.cancelCode(code); } }),
          h("button", { type: "button", class: "secondary", "data-testid": "cancel-no", text: self.t("cancel_no"),
            onclick: function () {
              self.state.cancelArmed = null;
              self.render();
              var back = self.root.querySelector('[data-focus="cancel-' + code.id + '"]');
              if (back) back.focus();
            } }),
        ]),
      ]) : null;
      return h("li", { class: status === "issued" ? "" : "done", "data-testid": "my-code", "data-code-id": code.id }, [
        h("div", { class: "code-head" }, [
          h("span", { class: "reward-name", dir: "auto", text: self.codeName(code) }),
          h("span", { class: "status " + status, "data-testid": "code-status", "data-status": status,
            text: self.t("status_" + status) }),
        ]),
        h("div", { class: "code-foot" }, [
          h("span", { class: "code", dir: "ltr", text: code.code }),
          h("span", { class: "muted", text: self.codeWhen(code, status) }),
          cancelable && !asking ? h("button", { type: "button", class: "secondary",
            "data-focus": "cancel-" + code.id, "data-testid": "cancel-code", disabled: self.state.busy,
            "aria-label": self.t("cancel_code_aria", { code: code.code }), text: self.t("cancel_code"),
            onclick: function () {
              self.state.cancelArmed = code.id;
              self.codesResult = null;
              self.render();
              var yes = self.root.querySelector('[data-focus="cancel-yes-' + code.id + '"]');
              if (yes) yes.focus();
            } }) : null,
        ]),
        ask,
      ]);
    }));
    var result = h("div", { class: "result", "data-testid": "cancel-result" });
    if (self.codesResult) result.appendChild(self.codesResult);
    return h("section", { class: "section", "aria-labelledby": "lw-codes-heading" }, [
      h("h3", { id: "lw-codes-heading", text: self.t("codes_heading") }),
      list,
      result,
    ]);
  };

  Widget.prototype.cancelCode = function (code) {
    var self = this;
    if (self.state.busy) return;
    self.state.busy = true;
    self.render();
    self.request("POST", "/v1/me/redemptions/" + code.id + "/cancel", {}).then(function (canceled) {
      var returned = (canceled && canceled.points_returned) || code.points_spent;
      var message = self.t("canceled_notice", { points: self.points(returned) });
      self.codesResult = h("div", { class: "notice", role: "status", text: message });
      self.announce(message);
      return self.refresh();
    }).catch(function (error) {
      self.codesResult = h("div", { class: "notice error", role: "alert" }, [
        h("strong", { text: self.t("cancel_failed") + " " }),
        document.createTextNode(self.reason(error)),
      ]);
      self.announce(self.t("cancel_failed"));
      // Used or canceled elsewhere meanwhile: show the codes as they are now.
      return self.refresh().catch(function () { /* the notice already says what failed */ });
    }).then(function () {
      self.state.busy = false;
      self.state.cancelArmed = null;
      self.render();
    });
  };

  // --- Referral link, copied or shared ------------------------------------------------------

  Widget.prototype.referralLink = function () {
    var ref = this.state.referrals || {};
    var fromMe = this.state.me.referral || {};
    return ref.url || ref.link || fromMe.url || null;
  };

  // Links the shopper follows to share (nothing is loaded from those hosts by the widget).
  Widget.prototype.shareLinks = function (link) {
    var text = this.t("share_text", { url: link });
    var enc = encodeURIComponent;
    return [
      { via: "email", href: "mailto:?subject=" + enc(this.t("share_subject")) + "&body=" + enc(text) },
      { via: "sms", href: "sms:?&body=" + enc(text) },
      { via: "whatsapp", href: "https://wa.me/?text=" + enc(text) },
      { via: "x", href: "https://x.com/intent/post?text=" + enc(text) },
      { via: "facebook", href: "https://www.facebook.com/sharer/sharer.php?u=" + enc(link) },
    ];
  };

  Widget.prototype.renderReferral = function () {
    var self = this;
    var link = self.referralLink();
    if (!link) return null;
    var stats = self.state.referrals;
    var copied = h("p", { class: "copied", role: "status", "aria-live": "polite", "data-testid": "copy-status" });
    var input = h("input", { id: "lw-ref-link", type: "text", readonly: true, value: link, dir: "ltr",
      "data-testid": "referral-link", onfocus: function () { input.select(); } });
    var share = h("div", { class: "share", role: "group", "aria-label": self.t("share_on"),
      "data-testid": "share-links" }, self.shareLinks(link).map(function (item) {
      var web = item.href.slice(0, 8) === "https://";
      var name = self.t("share_" + item.via);
      return h("a", { href: item.href, "data-via": item.via, target: web ? "_blank" : null,
        rel: web ? "noopener noreferrer" : null, "aria-label": self.t("share_aria", { via: name }),
        text: name });
    }));
    if (typeof navigator.share === "function") {
      share.appendChild(h("button", { type: "button", "data-testid": "native-share", text: self.t("share_more"),
        onclick: function () {
          navigator.share({ title: self.t("share_subject"), text: self.t("share_text", { url: link }) })
            .catch(function () { /* dismissed by the shopper: nothing to say */ });
        } }));
    }
    return h("section", { class: "section", "aria-labelledby": "lw-ref-heading" }, [
      h("h3", { id: "lw-ref-heading", text: self.t("share_heading") }),
      h("label", { for: "lw-ref-link", text: self.t("share_label") }),
      h("div", { class: "copy-row" }, [
        input,
        h("button", { type: "button", "data-focus": "copy-link", text: self.t("copy_link"),
          onclick: function () { self.copy(link, copied, self.t("link_copied")); } }),
      ]),
      copied,
      share,
      stats && typeof stats.conversions === "number" ? h("p", { class: "stats muted",
        "data-testid": "referral-stats" }, [
        h("span", { text: self.t("clicks", { n: self.fmtNumber(stats.clicks || 0) }, stats.clicks || 0) }),
        h("span", { text: self.t("friends_joined", { n: self.fmtNumber(stats.conversions) }, stats.conversions) }),
        stats.points_earned ? h("span", { text: self.t("points_earned",
          { n: self.fmtNumber(stats.points_earned) }, stats.points_earned) }) : null,
      ]) : null,
    ]);
  };

  // --- Gift card balance ------------------------------------------------------------------

  Widget.prototype.renderGiftCard = function () {
    var self = this;
    var input = h("input", { id: "lw-gift-code", type: "text", autocomplete: "off", spellcheck: "false",
      autocapitalize: "characters", dir: "ltr", "data-testid": "gift-card-code", "data-focus": "gift-code",
      value: self.state.giftCode || "",
      oninput: function () { self.state.giftCode = input.value; } });
    var result = h("div", { class: "result", "data-testid": "gift-card-result" });
    if (self.giftResult) result.appendChild(self.giftResult);
    return h("section", { class: "section", "aria-labelledby": "lw-gift-heading" }, [
      h("h3", { id: "lw-gift-heading", text: self.t("gc_heading") }),
      h("form", { novalidate: true, onsubmit: function (event) {
        event.preventDefault();
        self.checkGiftCard(input.value);
      } }, [
        h("label", { for: "lw-gift-code", text: self.t("gc_label") }),
        h("div", { class: "copy-row" }, [
          input,
          h("button", { type: "submit", "data-focus": "gift-check", disabled: self.state.busy,
            text: self.t("gc_check") }),
        ]),
      ]),
      result,
    ]);
  };

  Widget.prototype.checkGiftCard = function (code) {
    var self = this;
    code = String(code || "").trim();
    if (self.state.busy) return;
    if (!code) {
      self.giftResult = h("div", { class: "notice error", role: "alert", text: self.t("gc_empty") });
      self.render();
      return;
    }
    self.state.busy = true;
    self.render();
    self.request("POST", "/v1/me/gift-card-lookup", { code: code }).then(function (card) {
      var amount = self.fmtMoney(card.balance, card.currency);
      self.giftResult = h("div", { class: "notice gift", role: "status", "data-testid": "gift-card-balance" }, [
        h("strong", { text: self.t("gc_card", { last4: card.last4 }) }),
        h("p", { class: "amount", "data-testid": "gift-card-amount", dir: "auto", text: amount }),
        h("p", { class: "muted", text: card.expires_at
          ? self.t("gc_expires", { date: self.fmtDate(card.expires_at) }) : self.t("gc_no_expiry") }),
      ]);
      self.announce(self.t("gc_card", { last4: card.last4 }) + ". " + self.t("gc_balance", { amount: amount }));
    }).catch(function (error) {
      var message;
      if (error instanceof ApiError && (error.status === 404 || error.status === 422)) {
        message = self.t("gc_not_found");  // wrong, malformed, disabled, expired: one answer
      } else if (error instanceof ApiError && error.status === 429) {
        var minutes = Math.max(1, Math.ceil((error.retryAfter || 60) / 60));
        message = self.t("gc_locked", { n: self.fmtNumber(minutes) }, minutes);
      } else {
        message = self.t("gc_failed");
      }
      self.giftResult = h("div", { class: "notice error", role: "alert", "data-testid": "gift-card-error",
        text: message });
      self.announce(message);
    }).then(function () {
      self.state.busy = false;
      self.render();
    });
  };

  // --- Points at checkout (a cart page: data-cart-subtotal) --------------------------------

  // Money off for `points`: floor(points × value_per_point) minor units, as the server counts.
  Widget.prototype.pointsValue = function (points) {
    var value = fraction(this.state.checkout.value_per_point);
    return Math.floor((points * value.num) / value.den);
  };

  // The slider's ends: [min_points, the most this cart and this balance allow], snapped to `step`.
  Widget.prototype.sliderRange = function () {
    var quote = this.state.checkout;
    var step = Math.max(1, quote.step || 1);
    var low = Math.max(step, Math.ceil((quote.min_points || step) / step) * step);
    var available = ((this.state.me || {}).points || {}).available;
    var high = Math.min(quote.max_points || 0, available === undefined ? Infinity : available);
    high = Math.floor(high / step) * step;
    return { low: low, high: high, step: step };
  };

  Widget.prototype.renderCheckout = function () {
    var self = this;
    var quote = self.state.checkout;
    var amountOf = function (points) { return self.fmtMoney(self.pointsValue(points), quote.currency); };
    var children = [h("h3", { id: "lw-checkout-heading", text: self.t("ck_heading") })];
    var range = self.sliderRange();
    if (range.high < range.low) {
      var available = ((self.state.me || {}).points || {}).available || 0;
      children.push(h("p", { class: "muted", "data-testid": "slider-unavailable", text: available < range.low
        ? self.t("ck_not_enough", { points: self.points(range.low) }) : self.t("ck_cart_too_small") }));
    } else {
      var points = self.state.sliderPoints;
      if (points === null || points < range.low || points > range.high) points = range.high;
      points = range.low + Math.round((points - range.low) / range.step) * range.step;
      self.state.sliderPoints = points;
      var valueText = function (p) { return self.t("ck_value", { points: self.points(p), amount: amountOf(p) }); };
      var output = h("p", { class: "slider-value", "data-testid": "slider-value", "aria-hidden": "true",
        text: valueText(points) });
      var apply = h("button", { type: "button", "data-focus": "apply-points", "data-testid": "apply-points",
        disabled: self.state.busy, text: self.t("ck_apply", { amount: amountOf(points) }),
        onclick: function () { self.applyPoints(self.state.sliderPoints); } });
      var slider = h("input", { id: "lw-points-slider", type: "range", "data-testid": "points-slider",
        "data-focus": "points-slider", min: range.low, max: range.high, step: range.step, value: points,
        "aria-valuetext": valueText(points),
        oninput: function () {
          var chosen = parseInt(slider.value, 10);
          self.state.sliderPoints = chosen;
          output.textContent = valueText(chosen);
          slider.setAttribute("aria-valuetext", valueText(chosen));
          apply.textContent = self.t("ck_apply", { amount: amountOf(chosen) });
        } });
      children.push(
        h("label", { for: "lw-points-slider", text: self.t("ck_label") }),
        output,
        slider,
        h("p", { class: "muted slider-range", "data-testid": "slider-range", text: self.t("ck_range",
          { min: self.fmtNumber(range.low), max: self.fmtNumber(range.high) }) }),
        h("div", { class: "buttons" }, [apply])
      );
    }
    var result = h("div", { class: "result", "data-testid": "checkout-result" });
    if (self.checkoutResult) result.appendChild(self.checkoutResult);
    children.push(result);
    return h("section", { class: "section", "aria-labelledby": "lw-checkout-heading",
      "data-testid": "checkout-points" }, children);
  };

  Widget.prototype.applyPoints = function (points) {
    var self = this;
    if (self.state.busy || !points) return;
    self.state.busy = true;
    self.render();
    var body = { points: points, cart_subtotal: self.cartSubtotal };
    self.request("POST", "/v1/me/checkout-discounts", body).then(function (code) {
      var amount = self.fmtMoney(code.amount || 0, self.state.checkout.currency);
      self.checkoutResult = h("div", { class: "notice", "data-testid": "checkout-code" }, [
        h("strong", { text: self.t("ck_done", { amount: amount }) }),
        self.codeRow(code.code || ""),
        code.expires_at ? h("p", { class: "muted", text: self.t("ck_valid", { date: self.fmtDate(code.expires_at) }) }) : null,
      ]);
      self.announce(self.t("ck_done", { amount: amount }) + " " + code.code);
      // The cart page may apply the code itself.
      self.host.dispatchEvent(new CustomEvent("loyalty:checkout-code", { bubbles: true,
        detail: { code: code.code, amount: code.amount, points: points } }));
      self.state.sliderPoints = null;
      return self.refresh();
    }).catch(function (error) {
      self.checkoutResult = h("div", { class: "notice error", role: "alert" }, [
        h("strong", { text: self.t("ck_failed") + " " }),
        document.createTextNode(self.reason(error)),
      ]);
      self.announce(self.t("ck_failed"));
    }).then(function () {
      self.state.busy = false;
      self.render();
      var copy = self.root.querySelector('[data-testid="checkout-code"] button');
      if (copy) copy.focus();
    });
  };

  // --- Activity -----------------------------------------------------------------------------

  Widget.prototype.describeEntry = function (entry) {
    var detail = entry.detail || {};
    var source = entry.source || {};
    switch (entry.kind) {
      case "earn": return source.id ? this.t("entry_order", { id: source.id }) : this.t("entry_earn");
      case "redeem": return this.t("entry_redeem", { reward: detail.reward || this.t("a_reward") });
      case "redeem_cancel": return this.t("entry_redeem_cancel");
      case "referral": return this.t("entry_referral");
      case "expire": return this.t("entry_expire");
      case "reversal": case "clawback": return this.t("entry_refund");
      // A custom action's award, a sign-up or birthday bonus: the earning rule's name.
      default: return detail.reason || detail.rule || this.t(entry.kind === "adjust" ? "entry_adjust" : "entry_bonus");
    }
  };

  Widget.prototype.renderActivity = function () {
    var self = this;
    var open = self.root.querySelector("details");
    var items = self.state.activity.map(function (entry) {
      var sign = entry.points > 0 ? "+" : "−";
      return h("li", {}, [
        h("span", {}, [
          h("span", { "data-testid": "activity-what", text: self.describeEntry(entry) }),
          h("span", { class: "muted", text: " · " + self.fmtDate(entry.occurred_at) +
            (entry.state === "pending" ? " · " + self.t("entry_pending") : "") }),
        ]),
        h("span", { class: entry.points > 0 ? "plus" : "minus", dir: "ltr",
          text: sign + self.fmtNumber(Math.abs(entry.points)) }),
      ]);
    });
    return h("section", { class: "section" }, [
      h("details", { open: open && open.open }, [
        h("summary", { text: self.t("activity") }),
        h("ul", { class: "activity", "aria-label": self.t("activity_label") }, items),
      ]),
    ]);
  };

  Widget.prototype.copy = function (text, statusNode, message) {
    var self = this;
    function done(ok) {
      statusNode.textContent = ok ? message : self.t("copy_by_hand");
      statusNode.setAttribute("data-copied", ok ? text : "");
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(fallbackCopy(text)); });
    } else {
      done(fallbackCopy(text));
    }
  };

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.cssText = "position:fixed;top:-1000px;opacity:0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  // After points moved: the balance and every section that shows what they buy.
  Widget.prototype.refresh = function () {
    var self = this;
    var state = self.state;
    return Promise.all([
      self.request("GET", "/v1/me"),
      state.rewards ? optional(self.request("GET", "/v1/me/rewards")) : null,
      state.activity ? optional(self.request("GET", "/v1/me/activity?limit=5")) : null,
      optional(self.request("GET", "/v1/me/redemptions?limit=" + CODES_SHOWN)),
      state.checkout ? optional(self.request("GET", self.checkoutPath())) : null,
    ]).then(function (results) {
      state.me = results[0];
      if (results[1]) state.rewards = results[1].items || [];
      if (results[2]) state.activity = results[2].items || [];
      if (results[3]) state.codes = results[3].items || [];
      if (results[4]) state.checkout = results[4];
    });
  };

  function tokenFetcher(url) {
    return function () {
      return fetch(url, { method: "POST", credentials: "same-origin",
        headers: { Accept: "application/json" } }).then(function (res) {
        if (!res.ok) throw new ApiError(401, { detail: "Could not renew the widget token." });
        return res.json();
      }).then(function (body) { return body.token; });
    };
  }

  function mount(element, options) {
    options = options || {};
    var host = typeof element === "string" ? document.querySelector(element) : element;
    if (!host) throw new Error("LoyaltyWidget.mount: no element " + element);
    if (!options.api) throw new Error("LoyaltyWidget.mount: options.api is required");
    var getToken = options.getToken || (options.tokenUrl ? tokenFetcher(options.tokenUrl) : null);
    var widget = new Widget(host, {
      api: options.api, token: options.token, getToken: getToken, locale: options.locale,
      cartSubtotal: options.cartSubtotal,
    });
    widget.ready = widget.load();
    return widget;
  }

  var script = document.currentScript;
  var defaultApi = script && script.src ? new URL(script.src, location.href).origin : "";
  window.LoyaltyWidget = {
    mount: function (element, options) {
      options = Object.assign({ api: defaultApi }, options || {});
      return mount(element, options);
    },
    languages: Object.keys(MESSAGES),
  };

  if (script && (script.dataset.token || script.dataset.tokenUrl)) {
    var data = script.dataset;
    var start = function () {
      var host = data.target ? document.querySelector(data.target) : null;
      if (!host) {
        host = document.createElement("div");
        script.parentNode.insertBefore(host, script.nextSibling);
      }
      window.LoyaltyWidget.instance = mount(host, {
        api: data.api || defaultApi, token: data.token, tokenUrl: data.tokenUrl, locale: data.locale,
        cartSubtotal: data.cartSubtotal,
      });
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }
})();
