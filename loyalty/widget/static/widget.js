/*! Loyalty storefront widget. No dependencies; talks to /v1/me with a widget token only.
 *
 * One tag, with a token minted by the storefront's server (POST /v1/widget-tokens):
 *   <div id="rewards"></div>
 *   <script src="https://loyalty.example.com/widget.js" data-token="..." data-target="#rewards"
 *           data-token-url="/my-server/widget-token"></script>
 * or from code:
 *   LoyaltyWidget.mount(element, {token, api, getToken: () => fetchNewToken()})
 *
 * data-api (default: where this script came from), data-locale (default: the browser's),
 * data-token-url (POSTed to get {token} again when the token expires; same-origin cookies sent).
 * Everything renders in a Shadow DOM: the page's styles don't reach in, ours don't leak out.
 * Theme with CSS custom properties on the host element: --loyalty-accent, --loyalty-radius.
 */
(function () {
  "use strict";

  // While the store has not yet created a new code as its own discount code, the widget asks
  // again this often, this many times (well inside WIDGET_RATE_LIMIT's reads per minute).
  var ACTIVATION_POLL_MS = 1500;
  var ACTIVATION_POLLS = 40;

  var STYLE = [
    ":host{all:initial;display:block;font-family:system-ui,-apple-system,'Segoe UI',Roboto,",
    "'Helvetica Neue',Arial,sans-serif;font-size:16px;line-height:1.45;color:#1c1b22;",
    "--accent:var(--loyalty-accent,#7a2e4d);--radius:var(--loyalty-radius,14px);}",
    "*{box-sizing:border-box}",
    ".card{background:#fff;border:1px solid #e7e3e8;border-radius:var(--radius);",
    "box-shadow:0 6px 24px rgba(28,27,34,.07);overflow:hidden;max-width:100%}",
    ".head{background:linear-gradient(135deg,var(--accent),#3d1730);color:#fff;padding:20px 22px 18px}",
    ".eyebrow{margin:0;font-size:.78rem;letter-spacing:.08em;text-transform:uppercase;opacity:.85}",
    ".title{margin:2px 0 14px;font-size:1.15rem;font-weight:600}",
    ".balance{display:flex;align-items:baseline;gap:8px;margin:0}",
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
    "ul{list-style:none;margin:0;padding:0;display:grid;gap:10px}",
    ".reward{display:flex;align-items:center;justify-content:space-between;gap:12px;",
    "padding:12px 14px;border:1px solid #ece8ed;border-radius:10px}",
    ".reward.locked{background:#faf9fb}",
    ".reward-name{font-weight:600;margin:0}",
    ".reward-cost{margin:2px 0 0;font-size:.85rem;color:#5f5a66}",
    "button{font:inherit;font-size:.9rem;font-weight:600;cursor:pointer;border-radius:999px;",
    "min-height:44px;min-width:44px;padding:0 18px;border:1px solid var(--accent);",
    "background:var(--accent);color:#fff;white-space:nowrap}",
    "button.secondary{background:#fff;color:var(--accent)}",
    "button:hover:not(:disabled){filter:brightness(1.08)}",
    "button:focus-visible,input:focus-visible{outline:3px solid #b9a1ff;outline-offset:2px}",
    "button:disabled{cursor:not-allowed;background:#eeeaef;border-color:#eeeaef;color:#6b6571}",
    ".result{margin:0}",
    ".result:empty{display:none}",
    ".notice{margin-top:12px;padding:12px 14px;border-radius:10px;background:#eef8f1;",
    "border:1px solid #cfe9d7;color:#17462a}",
    ".notice.error{background:#fdf0f0;border-color:#f3cccc;color:#7a1f1f}",
    ".code-row{display:flex;align-items:center;gap:10px;flex-wrap:wrap;margin-top:8px}",
    ".code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:1.1rem;",
    "font-weight:700;letter-spacing:.06em;padding:6px 10px;background:#fff;border-radius:8px;",
    "border:1px dashed #8fbf9f}",
    "label{display:block;font-size:.85rem;color:#5f5a66;margin-bottom:6px}",
    ".copy-row{display:flex;gap:8px}",
    "input{font:inherit;font-size:.9rem;flex:1;min-width:0;min-height:44px;padding:0 12px;",
    "border:1px solid #d9d3db;border-radius:10px;background:#faf9fb;color:#1c1b22}",
    ".stats{display:flex;gap:16px;margin:10px 0 0;flex-wrap:wrap}",
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
    "details{margin:0}",
    "summary{cursor:pointer;font-weight:650;font-size:.95rem;min-height:28px;list-style-position:inside}",
    "summary:focus-visible{outline:3px solid #b9a1ff;outline-offset:2px;border-radius:6px}",
    ".activity{margin-top:12px;gap:0}",
    ".activity li{display:flex;justify-content:space-between;gap:12px;padding:9px 0;",
    "border-top:1px solid #f1eef2;font-size:.88rem}",
    ".activity li:first-child{border-top:0}",
    ".plus{color:#17663a;font-weight:650;white-space:nowrap}",
    ".minus{color:#7a1f1f;font-weight:650;white-space:nowrap}",
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

  function plural(shown, word, n) {
    return shown + " " + word + (n === 1 ? "" : "s");
  }

  function idempotencyKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function ApiError(status, problem) {
    this.status = status;
    this.problem = problem || {};
    this.message = this.problem.detail || this.problem.title || "Request failed (" + status + ")";
  }

  function Widget(host, options) {
    this.host = host;
    this.api = String(options.api || "").replace(/\/+$/, "");
    this.token = options.token || "";
    this.getToken = options.getToken || null;
    this.locale = options.locale || navigator.language || "en-US";
    this.root = host.shadowRoot || host.attachShadow({ mode: "open" });
    this.state = { me: null, rewards: null, referrals: null, armed: null, busy: false };
    this.root.innerHTML = "";
    this.root.appendChild(h("style", { text: STYLE }));
    this.view = h("div", { class: "card", role: "region", "aria-label": "Loyalty rewards" });
    this.root.appendChild(this.view);
    // One live region that stays put while the panel re-renders, so screen readers hear results.
    this.announcer = h("div", { class: "sr", role: "status", "aria-live": "polite" });
    this.root.appendChild(this.announcer);
    this.view.appendChild(h("p", { class: "loading", role: "status", text: "Loading your rewards…" }));
  }

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
        if (!res.ok) throw new ApiError(res.status, data);
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

  Widget.prototype.load = function () {
    var self = this;
    return Promise.all([
      self.request("GET", "/v1/me"),
      optional(self.request("GET", "/v1/me/rewards")),
      optional(self.request("GET", "/v1/me/referrals?limit=1")),
      optional(self.request("GET", "/v1/me/activity?limit=5")),
    ]).then(function (results) {
      self.state.me = results[0];
      self.state.rewards = results[1] ? results[1].items || [] : null;
      self.state.referrals = results[2];
      self.state.activity = results[3] ? results[3].items || [] : null;
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
      h("p", { class: "muted", text: expired
        ? "Your session has expired. Reload the page to see your rewards."
        : "We couldn't load your rewards right now." }),
      expired ? null : h("button", { type: "button", class: "secondary", text: "Try again",
        onclick: function () { self.load(); } }),
    ]));
  };

  Widget.prototype.announce = function (message) {
    this.announcer.textContent = message;
  };

  Widget.prototype.fmtNumber = function (n) {
    return new Intl.NumberFormat(this.locale).format(n);
  };

  Widget.prototype.fmtMoney = function (minor) {
    var currency = (this.state.me && this.state.me.currency) || "USD";
    var format = new Intl.NumberFormat(this.locale, { style: "currency", currency: currency });
    var digits = format.resolvedOptions().maximumFractionDigits;
    return format.format(minor / Math.pow(10, digits));
  };

  Widget.prototype.fmtDate = function (iso) {
    return new Intl.DateTimeFormat(this.locale, { dateStyle: "medium" }).format(new Date(iso));
  };

  Widget.prototype.render = function () {
    var me = this.state.me;
    var focused = this.root.activeElement && this.root.activeElement.getAttribute("data-focus");
    this.view.textContent = "";
    var points = me.points || {};
    var firstName = (me.name || "").split(" ")[0];
    this.view.appendChild(h("div", { class: "head" }, [
      h("p", { class: "eyebrow", text: "Rewards" }),
      h("h2", { class: "title", text: firstName ? "Hi " + firstName + ", here's your balance" : "Your balance" }),
      h("p", { class: "balance" }, [
        h("span", { class: "points", "data-testid": "balance", text: this.fmtNumber(points.available || 0) }),
        h("span", { class: "unit", text: points.available === 1 ? "point" : "points" }),
      ]),
      points.pending ? h("p", { class: "pending", "data-testid": "pending",
        text: "+ " + this.fmtNumber(points.pending) + " pending — available after the return window" }) : null,
    ]));
    this.view.appendChild(this.renderTier(me));
    if (this.state.rewards) this.view.appendChild(this.renderRewards());
    var referral = this.renderReferral();
    if (referral) this.view.appendChild(referral);
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
    var amount = function (n) {
      if (basis === "points") return self.fmtNumber(n) + (n === 1 ? " point" : " points");
      if (basis === "orders") return self.fmtNumber(n) + (n === 1 ? " order" : " orders");
      return self.fmtMoney(n);
    };
    var remaining = next ? (next.remaining != null ? next.remaining : next.remaining_spend) : 0;
    var children = [
      h("div", { class: "tier-row" }, [
        h("h3", { id: "lw-tier-heading", text: "Your tier" }),
        next ? h("span", { class: "muted", text: "Next: " + next.name }) : null,
      ]),
      h("div", { class: "tier-row" }, [
        h("span", { class: "badge", "data-testid": "tier", text: tier.name || "Member" }),
        tier.ends_at ? h("span", { class: "muted", text: "Status through " + this.fmtDate(tier.ends_at) }) : null,
      ]),
    ];
    if (next) {
      var percent = next.threshold > 0 ? Math.min(100, Math.floor((spend / next.threshold) * 100)) : 100;
      children.push(h("div", {
        class: "bar", role: "progressbar", "aria-label": "Progress to " + next.name,
        "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": percent,
        "aria-valuetext": amount(spend) + " of " + amount(next.threshold) + (basis === "spend" ? " spent" : ""),
        "data-testid": "tier-progress",
      }, [h("div", { class: "fill", style: "width:" + percent + "%" })]));
      children.push(h("p", { class: "muted", "data-testid": "next-tier" }, [
        h("strong", { class: "strong", text: amount(spend) }),
        " of " + amount(next.threshold) + " · " + (basis === "spend" ? "spend " : "") +
          amount(remaining) + " more to reach " + next.name + ".",
      ]));
    } else {
      children.push(h("p", { class: "muted tier-top", text: "You've reached our top tier. Thank you!" }));
    }
    if (tier.perks && tier.perks.length) {
      children.push(h("ul", { class: "perks", "aria-label": (tier.name || "Tier") + " perks" },
        tier.perks.map(function (perk) { return h("li", { text: perk }); })));
    }
    return h("section", { class: "section", "aria-labelledby": "lw-tier-heading" }, children);
  };

  var LOCKED_REASONS = {
    tier_required: function (reward) { return (reward.tier || "A higher tier") + " members only"; },
    out_of_stock: function () { return "Out of stock"; },
    limit_reached: function () { return "Already redeemed"; },
  };

  function canRedeem(reward) {
    return reward.redeemable !== undefined ? !!reward.redeemable : !!reward.affordable;
  }

  Widget.prototype.renderRewards = function () {
    var self = this;
    var available = (self.state.me.points || {}).available || 0;
    var items = self.state.rewards.slice().sort(function (a, b) {
      return (canRedeem(b) ? 1 : 0) - (canRedeem(a) ? 1 : 0) || a.points_cost - b.points_cost;
    });
    var list = h("ul", { "aria-label": "Rewards" }, items.map(function (reward) {
      var ok = canRedeem(reward);
      var armed = self.state.armed === reward.id;
      var cost = self.fmtNumber(reward.points_cost) + " points";
      var reasons = [];
      if (reward.unavailable_reason) {
        reasons.push((LOCKED_REASONS[reward.unavailable_reason] || function () {
          return "Not available";
        })(reward));
      }
      if (!reward.affordable) {
        reasons.push(self.fmtNumber(Math.max(0, reward.points_cost - available)) + " more points");
      }
      var why = reasons.join(" · ");
      var button = h("button", {
        type: "button",
        "data-focus": "reward-" + reward.id,
        "data-testid": "redeem",
        disabled: !ok || self.state.busy,
        "aria-label": armed
          ? "Confirm: spend " + cost + " on " + reward.name
          : (ok ? "Redeem " + reward.name + " for " + cost : reward.name + ": " + why),
        text: !ok ? "Locked" : (armed ? "Confirm" : "Redeem"),
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
          h("p", { class: "reward-name", text: reward.name }),
          h("p", { class: "reward-cost", text: cost }),
          ok ? null : h("p", { class: "reward-why", text: why }),
          armed ? h("p", { class: "reward-cost", text: "Press Confirm to spend " + cost + "." }) : null,
        ]),
        button,
      ]);
    }));
    var result = h("div", { class: "result", "data-testid": "redeem-result" });
    if (self.lastResult) result.appendChild(self.lastResult);
    return h("section", { class: "section", "aria-labelledby": "lw-rewards-heading" }, [
      h("h3", { id: "lw-rewards-heading", text: "Rewards" }),
      items.length ? list : h("p", { class: "muted", text: "No rewards yet — check back soon." }),
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
        self.announce("You redeemed " + reward.name + ". Activating your code at the store…");
        self.waitForStore(reward, redemption.id, ACTIVATION_POLLS);
      } else {
        self.showRedeemed(reward, redemption);
      }
      return self.refresh();
    }).catch(function (error) {
      self.announce("Couldn't redeem " + reward.name + ". " + (error.message || ""));
      self.lastResult = h("div", { class: "notice error", role: "alert" }, [
        h("strong", { text: "Couldn't redeem " + reward.name + ". " }),
        document.createTextNode(error.message || "Please try again."),
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
        h("strong", { text: "You redeemed " + reward.name + ", but the store could not activate the code. " }),
        document.createTextNode("Please contact us: your points are safe."),
      ]);
      this.announce("The store could not activate your code for " + reward.name + ".");
      return;
    }
    this.lastResult = this.redeemedNotice(reward, redemption);
    this.announce("You redeemed " + reward.name + ". Your code is " + redemption.code + ".");
  };

  Widget.prototype.activatingNotice = function (reward) {
    return h("div", { class: "notice", role: "status", "data-testid": "code-activating" }, [
      h("strong", { text: "You redeemed " + reward.name + "." }),
      h("p", { class: "muted", text: "Activating your code at the store…" }),
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
            text: "The store may take a few more minutes to accept it." }));
        }
        self.render();
      }).catch(function () {
        if (left > 1) self.waitForStore(reward, redemptionId, left - 1);
      });
    }, ACTIVATION_POLL_MS);
  };

  Widget.prototype.redeemedNotice = function (reward, redemption) {
    var self = this;
    var code = redemption.code || "";
    var copied = h("span", { class: "copied", "aria-live": "polite" });
    return h("div", { class: "notice", "data-testid": "redeemed" }, [
      h("strong", { text: "You redeemed " + reward.name + "." }),
      h("div", { class: "code-row" }, [
        h("span", { class: "sr", text: "Your code is " }),
        h("span", { class: "code", "data-testid": "reward-code", text: code }),
        h("button", { type: "button", class: "secondary", "aria-label": "Copy code " + code,
          text: "Copy code", onclick: function () { self.copy(code, copied, "Code copied"); } }),
        copied,
      ]),
      redemption.expires_at ? h("p", { class: "muted", text: "Use it at checkout by " +
        self.fmtDate(redemption.expires_at) + "." }) : null,
    ]);
  };

  Widget.prototype.referralLink = function () {
    var ref = this.state.referrals || {};
    var fromMe = this.state.me.referral || {};
    return ref.url || ref.link || fromMe.url || null;
  };

  Widget.prototype.renderReferral = function () {
    var self = this;
    var link = self.referralLink();
    if (!link) return null;
    var stats = self.state.referrals;
    var copied = h("p", { class: "copied", role: "status", "aria-live": "polite", "data-testid": "copy-status" });
    var input = h("input", { id: "lw-ref-link", type: "text", readonly: true, value: link,
      "data-testid": "referral-link", onfocus: function () { input.select(); } });
    return h("section", { class: "section", "aria-labelledby": "lw-ref-heading" }, [
      h("h3", { id: "lw-ref-heading", text: "Share and earn" }),
      h("label", { for: "lw-ref-link", text: "Your referral link — friends get a welcome reward" }),
      h("div", { class: "copy-row" }, [
        input,
        h("button", { type: "button", "data-focus": "copy-link", text: "Copy link",
          onclick: function () { self.copy(link, copied, "Link copied to clipboard"); } }),
      ]),
      copied,
      stats && typeof stats.conversions === "number" ? h("p", { class: "stats muted",
        "data-testid": "referral-stats" }, [
        h("span", { text: plural(self.fmtNumber(stats.clicks || 0), "click", stats.clicks) }),
        h("span", { text: plural(self.fmtNumber(stats.conversions), "friend", stats.conversions) + " joined" }),
        stats.points_earned ? h("span", { text: self.fmtNumber(stats.points_earned) + " points earned" }) : null,
      ]) : null,
    ]);
  };

  function describeEntry(entry) {
    var detail = entry.detail || {};
    var source = entry.source || {};
    switch (entry.kind) {
      case "earn": return "Order " + source.id;
      case "redeem": return "Redeemed " + (detail.reward || "a reward");
      case "redeem_cancel": return "Redemption canceled";
      case "referral": return "Referral reward";
      case "expire": return "Points expired";
      case "reversal": case "clawback": return "Refund";
      default: return detail.reason || detail.rule_name || (entry.kind.charAt(0).toUpperCase() + entry.kind.slice(1));
    }
  }

  Widget.prototype.renderActivity = function () {
    var self = this;
    var open = self.root.querySelector("details");
    var items = self.state.activity.map(function (entry) {
      var sign = entry.points > 0 ? "+" : "−";
      return h("li", {}, [
        h("span", {}, [
          h("span", { text: describeEntry(entry) }),
          h("span", { class: "muted", text: " · " + self.fmtDate(entry.occurred_at) +
            (entry.state === "pending" ? " · pending" : "") }),
        ]),
        h("span", { class: entry.points > 0 ? "plus" : "minus",
          text: sign + self.fmtNumber(Math.abs(entry.points)) }),
      ]);
    });
    return h("section", { class: "section" }, [
      h("details", { open: open && open.open }, [
        h("summary", { text: "Recent activity" }),
        h("ul", { class: "activity", "aria-label": "Recent points activity" }, items),
      ]),
    ]);
  };

  Widget.prototype.copy = function (text, statusNode, message) {
    function done(ok) {
      statusNode.textContent = ok ? message : "Select the text and copy it by hand.";
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

  Widget.prototype.refresh = function () {
    var self = this;
    return Promise.all([
      self.request("GET", "/v1/me"),
      self.state.rewards ? optional(self.request("GET", "/v1/me/rewards")) : null,
      self.state.activity ? optional(self.request("GET", "/v1/me/activity?limit=5")) : null,
    ]).then(function (results) {
      self.state.me = results[0];
      if (results[1]) self.state.rewards = results[1].items || [];
      if (results[2]) self.state.activity = results[2].items || [];
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
      });
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }
})();
