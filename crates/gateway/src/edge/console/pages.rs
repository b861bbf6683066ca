//! The console's HTML (maud): one layout, forms with labels, no JavaScript needed.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::service::{KeyState, KeyView};

/// What every signed-in page shows in its header.
pub(crate) struct Chrome<'a> {
    /// The signed-in account.
    pub(crate) account: Option<&'a str>,
    /// The session's CSRF token.
    pub(crate) csrf: &'a str,
    /// A message shown once.
    pub(crate) flash: Option<&'a str>,
    /// An error to show.
    pub(crate) error: Option<&'a str>,
}

pub(crate) fn layout(title: &str, chrome: &Chrome<'_>, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — wbauth API settings" }
                link rel="stylesheet" href="/console.css";
            }
            body {
                header {
                    span.brand { "wbauth API settings" }
                    @if let Some(account) = chrome.account {
                        a href="/keys" { "API keys" }
                        a href="/2fa" { "Two-factor authentication" }
                        span { "Signed in as " strong { (account) } }
                        form method="post" action="/signout" {
                            input type="hidden" name="csrf" value=(chrome.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    @if let Some(flash) = chrome.flash {
                        p.flash role="status" { (flash) }
                    }
                    @if let Some(error) = chrome.error {
                        p.error role="alert" { (error) }
                    }
                    (body)
                }
                script src="/console.js" defer {}
            }
        }
    }
}

/// The TOTP code field every change carries.
pub(crate) fn code_field(id: &str) -> Markup {
    html! {
        label for=(id) { "Current code from your authenticator app" }
        input.code type="text" id=(id) name="code" inputmode="numeric" autocomplete="one-time-code"
            pattern="[0-9]{6}" maxlength="6" required;
    }
}

pub(crate) fn sign_in(csrf: &str, name: &str) -> Markup {
    html! {
        form.card method="post" action="/signin" {
            input type="hidden" name="csrf" value=(csrf);
            label for="name" { "Account name" }
            input type="text" id="name" name="name" value=(name) autocomplete="username" required;
            label for="password" { "Password" }
            input type="password" id="password" name="password" autocomplete="current-password" required;
            label for="code" { "Two-factor code" }
            input.code type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code"
                pattern="[0-9]{6}" maxlength="6";
            p.hint { "Only once two-factor authentication is on for the account." }
            button type="submit" { "Sign in" }
        }
    }
}

/// The one-time link's form: choose the account's console password.
pub(crate) fn welcome(csrf: &str, token: &str, account: &str) -> Markup {
    html! {
        form.card method="post" action={ "/welcome/" (token) } {
            input type="hidden" name="csrf" value=(csrf);
            p { "Choose the web console password of account " strong { (account) } ". This link works once." }
            input type="hidden" id="name" name="name" value=(account) autocomplete="username";
            label for="password" { "New password" }
            input type="password" id="password" name="password" autocomplete="new-password"
                minlength="10" required;
            p.hint { "At least 10 characters." }
            label for="repeat" { "New password, again" }
            input type="password" id="repeat" name="repeat" autocomplete="new-password"
                minlength="10" required;
            button type="submit" { "Set password" }
        }
    }
}

pub(crate) fn two_factor(csrf: &str, on: bool, pending: bool) -> Markup {
    html! {
        div.card {
            @if on {
                p { "Two-factor authentication is " strong { "on" } ". API keys can be created." }
                h2 { "Move to another device" }
                form method="post" action="/2fa/enrol" {
                    input type="hidden" name="csrf" value=(csrf);
                    (code_field("reenrol-code"))
                    button.secondary type="submit" { "Re-enrol" }
                }
            } @else {
                p { "Two-factor authentication is " strong { "off" } @if pending { " (enrolment started, not confirmed)" } ". It must be on before an API key can be created." }
                form method="post" action="/2fa/enrol" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Enrol an authenticator app" }
                }
            }
        }
    }
}

pub(crate) fn enrolment(csrf: &str, qr_svg: &str, secret_base32: &str) -> Markup {
    html! {
        div.card {
            p { "Scan this code with your authenticator app, then type the code it shows." }
            div.qr role="img" aria-label="QR code of the authenticator secret" { (PreEscaped(qr_svg)) }
            p { "Or type this secret into the app: " code #totp-secret { (secret_base32) } }
            form method="post" action="/2fa/confirm" {
                input type="hidden" name="csrf" value=(csrf);
                (code_field("confirm-code"))
                button type="submit" { "Confirm" }
            }
        }
    }
}

/// `2026-12-01 05:44 UTC`
pub(crate) fn date(ms: u64) -> String {
    whitebit_auth::time::format_utc(ms, whitebit_auth::time::Precision::Minute)
}

pub(crate) fn state_text(key: &KeyView, idle_days: u64) -> String {
    match key.state {
        KeyState::Active => "active".to_owned(),
        KeyState::Disabled => "disabled".to_owned(),
        KeyState::Idle => format!("deactivated after {idle_days} days unused"),
    }
}

fn state_class(state: KeyState) -> &'static str {
    match state {
        KeyState::Active => "state-active",
        KeyState::Disabled => "state-disabled",
        KeyState::Idle => "state-idle",
    }
}

pub(crate) struct KeysPage<'a> {
    pub(crate) csrf: &'a str,
    pub(crate) kinds: &'a [String],
    pub(crate) kind: &'a str,
    pub(crate) patterns: &'a [String],
    pub(crate) keys: &'a [KeyView],
    pub(crate) idle_days: u64,
    pub(crate) two_factor_on: bool,
    pub(crate) max_ips: usize,
}

pub(crate) fn keys(page: &KeysPage<'_>) -> Markup {
    html! {
        nav.tabs aria-label="Key kinds" {
            @for kind in page.kinds {
                a href={ "/keys?kind=" (kind) } aria-current=[(kind == page.kind).then_some("page")] { (kind) }
            }
        }
        @if page.kinds.is_empty() {
            p.card { "No key kinds are configured on this gateway." }
        } @else {
            h2 { "Your " (page.kind) " keys" }
            @if page.keys.is_empty() {
                p.card { "No " (page.kind) " keys yet." }
            } @else {
                table {
                    thead { tr { th { "Public key" } th { "Created" } th { "Last used" } th { "Status" } th { "" } } }
                    tbody {
                        @for key in page.keys {
                            tr {
                                td data-label="Public key" { code { (key.public_key) } }
                                td data-label="Created" { (date(key.created_ms)) }
                                td data-label="Last used" { @match key.last_used_ms { Some(ms) => (date(ms)), None => "never" } }
                                td data-label="Status" { span class=(state_class(key.state)) { (state_text(key, page.idle_days)) } }
                                td { a href={ "/keys/" (key.public_key) } aria-label={ "Manage key " (key.public_key) } { "Manage" } }
                            }
                        }
                    }
                }
            }
            h2 { "Generate a " (page.kind) " key" }
            @if page.two_factor_on {
                form.card method="post" action="/keys" {
                    input type="hidden" name="csrf" value=(page.csrf);
                    input type="hidden" name="kind" value=(page.kind);
                    label for="ips" { "Trusted IPs (optional)" }
                    textarea id="ips" name="ips" {}
                    p.hint { "One per line: IPv4, IPv6 or CIDR blocks; at most " (page.max_ips) ". Empty: any address." }
                    (endpoints(page.patterns, &[]))
                    (code_field("create-code"))
                    button type="submit" { "Generate key" }
                }
            } @else {
                p.warning { "Turn on " a href="/2fa" { "two-factor authentication" } " before generating a key." }
            }
        }
    }
}

pub(crate) fn endpoints(patterns: &[String], checked: &[String]) -> Markup {
    html! {
        fieldset {
            legend { "Endpoints (none ticked: every endpoint of the kind)" }
            @for (i, pattern) in patterns.iter().enumerate() {
                label for={ "ep" (i) } {
                    input type="checkbox" id={ "ep" (i) } name="endpoint" value=(pattern) checked[checked.contains(pattern)];
                    code { (pattern) }
                }
            }
        }
    }
}

pub(crate) fn secret_shown(key: &KeyView, secret: &str, rotated: bool) -> Markup {
    html! {
        div.warning role="alert" {
            strong { "Copy the secret now: it is shown only once. " }
            "Anyone with it can sign requests as this key; store it like a password."
        }
        div.card {
            label for="public-key" { "API key" }
            div.secret {
                input type="text" id="public-key" value=(key.public_key) readonly;
                button.secondary type="button" data-copy="public-key" hidden { "Copy" }
            }
            label for="api-secret" { @if rotated { "New API secret" } @else { "API secret" } }
            div.secret {
                input type="text" id="api-secret" value=(secret) readonly autocomplete="off";
                button.secondary type="button" data-copy="api-secret" hidden { "Copy" }
            }
            p { a href={ "/keys/" (key.public_key) } { "Continue to the key's settings" } }
        }
    }
}

pub(crate) fn key_page(
    csrf: &str,
    key: &KeyView,
    patterns: &[String],
    idle_days: u64,
    max_ips: usize,
) -> Markup {
    let action = |what: &str| format!("/keys/{}/{what}", key.public_key);
    html! {
        div.card {
            p { "Public key: " code { (key.public_key) } }
            p { "Kind: " (key.kind) " · Created " (date(key.created_ms)) " · Last used "
                @match key.last_used_ms { Some(ms) => (date(ms)), None => "never" } }
            p { "Status: " span class=(state_class(key.state)) { (state_text(key, idle_days)) } }
        }
        h2 { "Enable or disable" }
        form.card method="post" action=(action(if key.state == KeyState::Active { "disable" } else { "enable" })) {
            input type="hidden" name="csrf" value=(csrf);
            (code_field("state-code"))
            @if key.state == KeyState::Active {
                button.danger type="submit" { "Disable key" }
            } @else {
                button type="submit" { "Enable key" }
            }
        }
        h2 { "Trusted IPs" }
        form.card method="post" action=(action("ips")) {
            input type="hidden" name="csrf" value=(csrf);
            label for="ips" { "Trusted IPs" }
            textarea id="ips" name="ips" { (key.ips.join("\n")) }
            p.hint { "One per line: IPv4, IPv6 or CIDR blocks; at most " (max_ips) ". Empty: any address." }
            (code_field("ips-code"))
            button type="submit" { "Save trusted IPs" }
        }
        h2 { "Endpoints" }
        form.card method="post" action=(action("endpoints")) {
            input type="hidden" name="csrf" value=(csrf);
            (endpoints(patterns, &key.endpoints))
            (code_field("endpoints-code"))
            button type="submit" { "Save endpoints" }
        }
        h2 { "Rotate the secret" }
        form.card method="post" action=(action("rotate")) {
            input type="hidden" name="csrf" value=(csrf);
            p.hint { "A new secret, shown once; the old one is refused from then on." }
            (code_field("rotate-code"))
            button.secondary type="submit" { "Rotate secret" }
        }
        h2 { "Delete" }
        p.card { a href=(action("delete")) { "Delete this key…" } }
    }
}

pub(crate) fn delete_confirm(csrf: &str, key: &KeyView) -> Markup {
    html! {
        div.card {
            p.warning { "Delete key " code { (key.public_key) } "? Requests signed with it are refused from then on. This cannot be undone." }
            form method="post" action={ "/keys/" (key.public_key) "/delete" } {
                input type="hidden" name="csrf" value=(csrf);
                (code_field("delete-code"))
                button.danger type="submit" { "Delete key" }
            }
            p { a href={ "/keys/" (key.public_key) } { "Cancel" } }
        }
    }
}
