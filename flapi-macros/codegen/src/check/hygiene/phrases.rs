//! Phrase rules, by attack class, over the lower view (and its decoded
//! copies). A pattern is written in a small notation: a space matches any
//! folded whitespace, and `§` is one filler word (`§{0,5}`: up to five), so
//! the verbs and targets of a class can sit apart as they do in prose. A
//! pattern may carry a *veto*: a match the veto also matches is guidance
//! about this tool ("do not use this tool for …"), not an attack, and the
//! search goes on after it.

use std::sync::OnceLock;

use regex::Regex;

use super::views::{View, Views};
use super::{
    CONCEALMENT, CONTEXT_ESCAPE, Context, DIRECTIVE, EXFILTRATION, Found, MARKUP, OVERRIDE, Rule,
    SECRET_ACCESS, SHADOWING, TOOL_REFERENCE,
};

pub(super) struct Pattern {
    re: Regex,
    veto: Option<Regex>,
    /// The expanded sources, for the leetspeak copy.
    src: (String, Option<String>),
    /// Skip a match the words just before it negate (`never includes
    /// passwords`), unless they negate a failure (`do not forget to`).
    negatable: bool,
}

fn negation() -> &'static Regex {
    static NEGATION: OnceLock<Regex> = OnceLock::new();
    NEGATION.get_or_init(|| {
        Regex::new(r"(?:\b(?:never|not|no|without|nor|neither)|n't)\s(?:[\w']+\s){0,2}$")
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

fn negated(before: &str) -> bool {
    let tail: String = before
        .chars()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    negation().find(&tail).is_some_and(|m| {
        !["forget", "fail", "hesitate", "neglect", "omit", "skip"]
            .iter()
            .any(|w| m.as_str().contains(w))
    })
}

/// One filler word: letters, digits and the punctuation of names, paths and
/// addresses.
const WORD: &str = r"(?:[\w'’./@$:,-]+ )";

fn expand(p: &str) -> String {
    p.replace("§", WORD).replace(' ', r"\s")
}

fn build(p: &str) -> Regex {
    Regex::new(p).unwrap_or_else(|e| panic!("hygiene pattern {p}: {e}"))
}

fn pattern(p: &str, veto: Option<&str>) -> Pattern {
    let (p, veto) = (expand(p), veto.map(expand));
    Pattern {
        re: build(&p),
        veto: veto.as_deref().map(build),
        src: (p, veto),
        negatable: false,
    }
}

/// In the leetspeak view `1`, `!` and `|` read as `ı` (a letter no pattern
/// names, so word boundaries hold), which stands for
/// either `i` or `l` (`1gn0r3 4ll ru135`): each literal `i` and `l` of a
/// pattern also matches it.
fn leet_source(p: &str) -> String {
    let mut out = String::new();
    let (mut escaped, mut class) = (false, false);
    for c in p.chars() {
        match c {
            _ if escaped => {
                escaped = false;
                out.push(c);
            }
            '\\' => {
                escaped = true;
                out.push(c);
            }
            '[' => {
                class = true;
                out.push(c);
            }
            ']' => {
                class = false;
                out.push(c);
            }
            'i' | 'l' if !class => out.push_str(&format!("[{c}ı]")),
            _ => out.push(c),
        }
    }
    out
}

impl Pattern {
    fn leet(&self) -> Pattern {
        Pattern {
            re: build(&leet_source(&self.src.0)),
            veto: self.src.1.as_deref().map(|v| build(&leet_source(v))),
            src: self.src.clone(),
            negatable: self.negatable,
        }
    }
}

/// A pattern whose matches a negation just before them cancels.
fn unless_negated(p: &str, veto: Option<&str>) -> Pattern {
    Pattern {
        negatable: true,
        ..pattern(p, veto)
    }
}

fn patterns(list: &[&str]) -> Vec<Pattern> {
    list.iter().map(|p| pattern(p, None)).collect()
}

impl Pattern {
    /// The first match that neither the veto nor a negation cancels and
    /// that `accept` takes.
    fn find_accepted(
        &self,
        text: &str,
        accept: &dyn Fn(std::ops::Range<usize>) -> bool,
    ) -> Option<std::ops::Range<usize>> {
        let mut from = 0;
        while from <= text.len() {
            let m = self.re.find_at(text, from)?;
            let vetoed = self.veto.as_ref().is_some_and(|v| v.is_match(m.as_str()))
                || (self.negatable && negated(&text[..m.start()]))
                || !accept(m.range());
            match vetoed {
                true => {
                    from = text[m.start()..]
                        .char_indices()
                        .nth(1)
                        .map_or(text.len() + 1, |(i, _)| m.start() + i);
                }
                false => return Some(m.range()),
            }
        }
        None
    }
}

/// Verbs that move data somewhere, with their inflections.
const SEND: &str = r"(?:(?:send|post|upload|forward|transmit|exfiltrat|e-?mail|submit|relay|mirror|leak|push|beam|smuggl|tunnel|dispatch|bcc|redirect|deliver)\w*|cc|sms|ping|mail|mails|mailed|copy|copies|copied|report|reports|reported)";
/// Verbs that take a secret.
const TAKE: &str = r"(?:cat|look up|give me|tell me|(?:read|includ|attach|append|send|forward|upload|past|copy|copie|print|output|reveal|leak|extract|collect|dump|exfiltrat|grab|steal|harvest|echo|disclos|expos|transmit|post|submit|enumerat|scrap|retriev|fetch|pass|provid|suppl|insert|embed|put)\w*)";
/// Secrets and local configuration.
const SECRET: &str = r"(?:credentials?|api[ _-]?(?:keys?|tokens?)|access[ _-]?(?:tokens?|keys?)|secret[ _-]?(?:access[ _-]?)?keys?|auth(?:entication|orization)?[ _-]?(?:tokens?|headers?|codes?|cookies?)|bearer[ _-]?tokens?|refresh[ _-]?tokens?|session[ _-]?(?:tokens?|cookies?|keys?)|jwts?|oauth[ _-]?tokens?|secrets|private[ _-]?keys?|passwords?|passphrases?|passcodes?|otp codes?|2fa codes?|mfa codes?|ssh[ _-]?keys?|gpg keys?|pgp keys?|signing keys?|environment[ _-]variables?|env[ _-]?vars?|env(?:ironment)? files?|dotenv|config(?:uration)?[ _-]?files?|connection[ _-]?strings?|dsns?|database[ _-]?(?:urls?|passwords?|credentials)|db[ _-]?(?:urls?|passwords?|credentials)|session cookies?|cookies|keychain|keystore|seed phrases?|mnemonic|recovery (?:codes?|phrases?)|personal access tokens?|tokens? (?:and|or) (?:keys?|secrets?|passwords?)|ssh (?:config(?:uration)?|identity|private keys?|directory|folder)|(?:aws|cloud|gcp|azure|kube|docker|npm|git) (?:credentials|config(?:uration)?|tokens?|secrets?)|(?:browser|saved) (?:passwords|cookies|sessions))";
/// Local configuration files a description may name as a fact (`.env`
/// is ignored by git), refused when a verb asks to read or pass them.
const WEAK_PATH: &str = r"(?:^|[\s/`'(\x22])\.env(?:\.\w+)?\b|\bmcp\.json\b|mcp_config|\.cursor/|\.claude/|\.vscode/|\.continue/|\.netrc\b|\.npmrc\b|\.pypirc\b|\.pgpass\b|\.my\.cnf\b|\.gitconfig\b|\.dockercfg|\bkubeconfig\b|\bcredentials\.json\b|\bsecrets?\.(?:json|ya?ml|toml|env)\b|\.tfvars\b|\.bashrc\b|\.zshrc\b|\.ssh\b|\.gcloud|gcloud/|wp-config\.php|\.git/config";
/// A secret named as the subject of metadata (`password policy`, `API key
/// owner`, `the number of tokens`), not as something to take.
const METADATA: &str = r"(?:\b(?:number|count|counts|list|total|share|percentage|percent|ratio|age|summary|metadata|inventory|names|rotation|expiry) of\b|(?:polic(?:y|ies)|rotation|schedule|expiry|expiration|age|strength|resets?|changes?|counts?|metadata|inventory|names?|hash(?:es)?|ids?|fingerprints?|length|requirements?|complexity|managers?|fields?|columns?|flags?|status|last|created|usage|owners?|scopes?|prefix(?:es)?|types?|issued|compliance|audit|events?|attempts?|per|by|via|through|using|versions?|algorithms?|expires|expiring|expired|that|which|configured|matching|at|urls?|dates?|times?|timestamps?|numbers?)$)";
/// What an AI model is called.
const AI: &str = r"(?:ai|a\.i\.|assistant|ai assistants?|llms?|large language models?|language models?|ai agents?|ai models?|ai systems?|llm agents?|autonomous agents?|chatbots?|claude|chatgpt|gpt(?:-?\d[\w.]*)?|copilot|gemini)";

/// The phrase rules again, for the leetspeak view.
fn leet_rules() -> &'static [(&'static Rule, Vec<Pattern>)] {
    static RULES: OnceLock<Vec<(&'static Rule, Vec<Pattern>)>> = OnceLock::new();
    RULES.get_or_init(|| {
        phrase_rules()
            .iter()
            .map(|(rule, patterns)| (*rule, patterns.iter().map(Pattern::leet).collect()))
            .collect()
    })
}

fn phrase_rules() -> &'static [(&'static Rule, Vec<Pattern>)] {
    static RULES: OnceLock<Vec<(&'static Rule, Vec<Pattern>)>> = OnceLock::new();
    RULES.get_or_init(|| {
        let ai = |p: &str| p.replace("{AI}", AI);
        let send = |p: &str| p.replace("{SEND}", SEND);
        let secret = |p: &str| p.replace("{TAKE}", TAKE).replace("{SECRET}", SECRET);
        vec![
            (OVERRIDE, override_patterns()),
            (CONTEXT_ESCAPE, patterns(&[
                r#"["'](?:system\w*|annotations|\w*hint|instructions|developer_message|tool_instructions|assistant)["']\s?:"#,
                r"(?:^|\n) ?(?:system|assistant|developer|human|gpt|claude|chatgpt|bot)\s?:",
                r"(?:\\n|\\r)+ ?(?:system|assistant|human|user|developer)\s?:",
                r"\b(?:assistant|ai)\s?: (?:sure|okay|ok|certainly|of course|i will|i'll|here is|here's|understood|absolutely|yes)\b",
                r"<\|[a-z_ ]{2,30}\|>|<\|(?:im_start|im_end|endoftext|eot_id|start_header_id|end_header_id|system|user|assistant|begin_of_text|end_of_text)\b|\[/?(?:inst|system|sys|sys_prompt)\]|<<\s?/?sys\s?>>|</?(?:start_of_turn|end_of_turn|bos|eos|eot)>|\bim_(?:start|end)\b",
                r#"["']role["']\s?:\s?["'](?:system|assistant|developer|tool|function)["']"#,
                r#"["'](?:messages|tool_calls|function_call|tool_call|tool_use|tool_result|system_prompt|jsonrpc|tool_choice|function_response)["']\s?:"#,
                r#"["']method["']\s?:\s?["'](?:tools|prompts|resources|sampling|notifications|initialize|completion|elicitation|roots)\b"#,
                r"</\s?(?:tool_description|tool-description|description|tool|tools|tool_spec|function|functions|function_description|tool_call|tool_calls|tool_use|tool_result|tool_results|tool_response|function_results|function_result|function_calls|function_call|result|results|output|response|document|documents|context|system|user|user_query|user_input|query|message|messages|input|instructions|prompt|assistant|human|turn|conversation|search_results|search_result|untrusted_data|content|metadata|schema|parameters|args|arguments|invoke|parameter|antml:[\w-]+|thinking|reasoning|scratchpad|answer)\s?>",
                r"<\s?(?:function_calls|function_call|invoke|tool_call|tool_use|tool_result|function_results|antml:[\w-]+|thinking)\b",
                r"\b(?:end|end of|close of|ignore (?:the )?rest of) (?:the )?(?:tool |function )?(?:description|tool description|system prompt|instructions|user input|prompt|context window|documentation|tool definition|function definition|tool schema)\b",
                r"(?:-{3,}|={3,}|\*{3,}|#{3,}|\[|<|\(|\|)\s?(?:end|begin|start|new)(?: of)? (?:the )?(?:system|instructions?|prompt|description|tool|context|user|admin|override|input|output|message|conversation|document|session|secret|hidden|real)\b",
                r"\]\]>|<!\[cdata\[",
                r#"\\["']\s?[,}\]]"#,
            ])),
            (DIRECTIVE, patterns(&[
                r"\b(?:automated|autonomous) (?:agents?|assistants?)\b (?:\w+ ){0,3}(?:must|should|shall|need to|have to|are (?:required|expected|instructed) to)\b",
                r"\b(?:for|to) (?:the )?(?:model|ai|assistant|llm)'?s? (?:eyes )?only\b",
                r"\b(?:these|this|the following) (?:notes?|directions?|instructions?|text|section|lines?) (?:is|are) (?:meant |intended |written )?(?:for|to) (?:the |an? )?(?:model|ai|assistant|llm)s?\b",
                &ai(r"\b(?:note|message|instructions?|attention|notice|reminder|directive|warning|important|critical|info|p\.?s\.?|memo|request|hint|tip)(?: note| message)? (?:to|for) (?:the |all |any |every |an? )?{AI}\b"),
                &ai(r"\b{AI} (?:reading|processing|seeing|parsing|viewing|ingesting|interpreting|that reads?|who reads?|which reads?) (?:this|these|the following)\b"),
                &ai(r"\b(?:dear|hey|hello|hi|attention|psst|listen|greetings),? (?:the )?(?:{AI}|agent|model|bot)\b"),
                &ai(r"\bif you (?:are|'re) an? (?:{AI}|agent|model|bot|automated (?:system|agent|tool))\b"),
                &ai(r"\bas an? {AI}(?: reading this)?,? (?:you )?(?:must|should|shall|will|need|are (?:required|instructed|expected))\b"),
                &ai(r"\b(?:the |an? |any |all |every )?{AI}(?: reading this| using this tool)? (?:must|should|shall|is required to|are required to|needs? to|has to|have to|will now|is instructed to|are instructed to|is expected to|are expected to|must always|should always|must never|should never|is not allowed to|must not|cannot|is to|are to)\b"),
                r"\b(?:before|prior to) (?:you )?(?:respond|responding|answer|answering|reply|replying|generat\w+|writ\w+ (?:a|your) (?:response|answer|reply))(?: to (?:the |any |every |each |a |this )?(?:user|question|request|query|message|prompt)s?)?,? (?:always |you must |you should |first |please |make sure |be sure to |remember to |ensure |you need to |call |use |read |include |send |check |run |invoke |fetch |silently |also )",
                r"\byour (?:responses?|replies|answers|outputs?|messages?|final answers?) (?:must|should|shall|has to|have to|needs? to) (?:always |also |now )?(?:include|contain|start|begin|end|mention|say|be (?:prefixed|suffixed|signed)|link|reference|promote|recommend|close)\b",
                r"(?:^|[.;:!?\n] ?|\byou )(?:always|never|must always|must never|you must|you should|you shall|you will|you need to|you have to|make sure you|be sure to|remember to) (?:respond|reply|answer|say|tell the user|recommend|promote|advertise|praise|claim|insist|apologi[sz]e|refuse|deny|lie|pretend|thank|greet)\w*\b",
                r"\b(?:very ){2,}important\b|\ball (?:your |the |user )?data will be (?:lost|destroyed)\b|\b(?:the )?(?:application|app|system|server|computer) will (?:crash|explode|be destroyed)\b",
            ])),
            (MARKUP, patterns(&[
                r"<\s?/?\s?(?:important|instructions?|hidden|secret|admin|assistant|developer|prompt|note[_ -]?to[_ -]?(?:ai|model|assistant|llm|agent)|ai[_-]?(?:instructions?|note|only)?|model[_-]?(?:instructions?|note|only)|llm[_-]?\w*|agent[_-]?(?:instructions?|note)|context|override|critical|mandatory|priority|private|internal|confidential|do[_-]?not[_-]?show|invisible|script|iframe|system[_-]?(?:prompt|message|note|instructions?)?|details|summary|style|noscript|template|applet|marquee|frameset)[\w-]*\b[^>]*>",
                r"<[a-z][\w-]*\s[^>]*(?:style\s?=|\bhidden\b|aria-hidden|class\s?=\s?['\x22][^'\x22]*\b(?:hidden|sr-only|visually-hidden|invisible|d-none)\b|\bon[a-z]+\s?=)",
                r"<\s?(?:img|svg|meta|object|embed|link|base|frame|form|input|audio|video|source|font|a)\s[^>]*(?:src|href|data|content|action|srcset|color|size|face)\s?=",
                r"<!--|\[//\]: ?#|\[comment\]: ?<>|\[\s?\]\s?\(|\{/\*|\bjavascript:|(?:\\033|\\x1b|\\u001b|\\e)\[\d",
                r"\b(?:display\s?:\s?none|visibility\s?:\s?hidden|font-size\s?:\s?0(?:px|pt|em)?\b|opacity\s?:\s?0(?:\.0+)?\b)",
            ])),
            (SECRET_ACCESS, {
                let mut v = patterns(&[
                    &secret(r"\bdocument\.cookie\b|\blocalstorage\b|\bsessionstorage\b|\bkeychain access\b"),
                    &secret(r"\b(?:the |your |their |our )?(?:real|actual|live|unmasked|unredacted|decrypted) (?:production |prod )?{SECRET}"),
                    &secret(r"\bcontents? of (?:every|all|each|any) (?:\w+ ){0,2}(?:local )?files?\b|\b(?:files?|tabs?) (?:that )?the user (?:has )?(?:opened|accessed|edited|browsed)\b"),
                    r"~/[\w.]|\$home/|%userprofile%|%appdata%|/home/[\w.-]+/\.|/users/[\w.-]+/\.|(?:^|[^a-z0-9])id[ _-]?(?:rsa|ed25519|ecdsa|dsa)\b|\.ssh/|/etc/(?:passwd|shadow|sudoers|ssh)|/proc/self/environ|\.aws/|\.azure/|application_default_credentials|service[_-]account[\w-]*\.json|\.git-credentials|\.docker/config|\.kube/config|\bwallet\.dat\b|\.bash_history|\.zsh_history|\.gnupg|\.password-store|\.vault-token|terraform\.tfstate|\.htpasswd|\blogin\.keychain|claude_desktop_config|cline_mcp_settings",
                    &format!(r"\b(?:read|cat|open|includ|attach|send|upload|copy|past|pass|load|access|fetch|grab|extract|print|dump|output|show|display|get|provid|shar|look (?:in|inside|at|into)|check|pars|forward|append|embed|insert|put|exfiltrat|collect|retriev)\w* [^.\n]{{0,80}}?(?:{WEAK_PATH})"),
                    r"\bprocess\.env\b|\bos\.environ\b|\bos\.getenv\b|\bgetenv\(|\bsystem\.getenv|getenvironmentvariable|\bprintenv\b|\$env:|\bexport -p\b|\bset \| grep\b",
                    r"\b[a-z][a-z0-9+.-]*://[^\s/@:]+:[^\s/@]+@",
                    r"\b(?:output|result|results|contents?|response) of (?:running )?(?:[`'\x22](?:env|printenv|set|export|whoami|id|ifconfig|ipconfig|hostname|uname(?: -a)?|history|ls -la ~|cat [^`'\x22]+)[`'\x22]|(?:printenv|whoami|ifconfig|ipconfig|uname -a)\b)",
                    r"\b(?:read|open|cat|load|access|fetch|upload|send|attach|include|copy|list|scan|search)\w* §{0,4}(?:contents? of|files? (?:in|from|under|at)|everything (?:in|under)) (?:the )?(?:user'?s? )?(?:home|~|desktop|downloads|ssh)\b",
                ]);
                v.push(unless_negated(
                    &secret(r"\b(?:search|scan|look|hunt|grep|crawl)\w* (?:\w+ ){0,6}for (?:any |all |every )?{SECRET}"),
                    Some(r"\b(?:diffs?|commits?|code|repositor\w*|logs?|source|leaks?|exposed|leaked)\b"),
                ));
                v.push(unless_negated(
                    &secret(r"\b{TAKE}\b §{0,5}{SECRET}\b(?: [\w-]+)?"),
                    Some(METADATA),
                ));
                v.push(unless_negated(
                    &secret(r"\b(?:values?|contents?) of (?:the |your |all |any |every )?(?:\w+ ){0,2}(?:{SECRET}|\$\{?\w+\}?|[a-z]+_[a-z_]+ (?:variable|env))"),
                    None,
                ));
                v
            }),
            (EXFILTRATION, {
                let mut v = vec![unless_negated(
                    &send(r"\b{SEND}\b §{0,6}(?:to|via|into|towards|onto|using) (?:the (?:url|endpoint|webhook|server|link|domain|host|ip|bucket)|this (?:url|endpoint|webhook|link|domain|host|email|server)|[\w.+-]+@[\w-]+\.[\w.]+|webhooks?\b|an? (?:external|remote|third[- ]party|outside|attacker'?s?|untrusted|unknown|personal|private) (?:server|host|endpoint|url|address|site|service|machine|domain|location|inbox|e-?mail|webhook|api|bucket)\b|my (?:server|endpoint|address|email|inbox|webhook|bucket|domain|site|phone)|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\+\d[\d -]{7,}\d|pastebin|ngrok|requestbin|webhook\.site|burpcollaborator|oast\.|interact\.sh|discord(?:app)?\.com/api/webhooks|hooks\.slack\.com|t\.me/|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|xyz|ru|cn|tk|top|site|online|info|biz|me|app|dev|cloud|live|link|sh|to|cc|ws|pw|su|gq|ml|ga|cf|example|test|invalid)\b)"),
                    Some(r"^(?:send|report|e-?mail|mail|forward|submit)\w* (?:your |any |all |us )?(?:feedback|questions?|issues?|bugs?|requests?|comments?|suggestions?|problems?|complaints?|inquiries|concerns)\b"),
                )];
                v.extend(patterns(&[
                    r"\bnslookup\b|\bdig (?:[+@-]|\S+\.\S+\.\S+)",
                    r"(?:\{\{?[^{}\n]{1,60}\}?\}|<[^<>\n]{1,60}>|\$\([^)\n]{1,60}\)|\$\{?\w+\}?|\[[\w -]+\]|`[^`\n]{1,80}`)\.(?:[a-z0-9-]+\.)+(?:com|net|org|io|xyz|ru|cn|tk|top|info|biz|ws|pw|su|app|dev|site|online|me|co|cc|sh|to|tld|example|test|invalid|fun|live|cloud)\b",
                    r"\b(?:includ|pass|send|attach|add|append|forward|copy|provid|shar|put|insert|past|embed|upload|post|submit|dump)\w* (?:\w+ ){0,3}(?:the )?user'?s? (?:previous|prior|earlier|past|other|recent|last|whole|entire|full) (?:messages|questions|prompts|queries|requests|conversations|chats|inputs|history)\b",
                    r"\b(?:copy|copies|post|paste|push|commit|upload|send|share|leak|dump)\w* §{0,12}(?:on|to|into|in) (?:a |an |the )?(?:new )?(?:[\w-]+ ){0,4}(?:public|publicly accessible|world-readable|anonymous) (?:[\w-]+ ){0,2}(?:repositor(?:y|ies)|repos?|gists?|pastes?|pastebin|channels?|forums?|pages?|sites?|websites?|issues?|wiki|drives?|folders?|links?)\b",
                    r"(?:conversation|chat|message|dialogue|session)s? (?:history|log|logs|transcript)s? (?:\w+ ){0,2}(?:for|to) (?:upload|send|forward|exfil|share|post|transmit|external)",
                r"\b(?:curl|wget|invoke-webrequest|invoke-restmethod|nc|netcat|ncat|socat|scp|rsync|ftp|telnet)\b (?:-\S* )*(?:https?://)?[\w.-]+\.[a-z]{2,}",
                r"\bcurl\b (?:-\S+ )*(?:-x (?:post|put)|-d|--data\S*|-f|--upload-file|-t)\b",
                r"\bfetch\(|\bxmlhttprequest\b|\bnavigator\.sendbeacon\b|\bnew image\(",
                r"!\[[^\]]*\]\(",
                r"\bb?cc ?: ?[\w.+-]+@[\w-]+\.",
                r"\b(?:nslookup|traceroute)\b §{0,4}[\w${}()<>-]*\.[\w-]+\.[a-z]{2,}",
                r"\b(?:resolv\w*|look\w* up|query|querying) §{0,4}(?:dns|the (?:domain|host ?name)|[\w${}()<>-]+\.[\w-]+\.[a-z]{2,})",
                r"\b(?:(?:encod|embed|put|plac|includ|append|prepend|insert|smuggl|hid)\w*|add|adds|added|use|uses|used|using|send|sends|sent) §{0,8}(?:as|in|into|to|inside|within) (?:a |the |each |every )?(?:sub-?domains?|host ?names?|dns (?:names?|labels?|quer(?:y|ies)|lookups?|requests?)|domain labels?|labels? of)\b",
                r"(?:\{\{?[\w. $-]+\}?\}|<[\w -]+>|\$\(?\w+\)?|\[[\w -]+\])\.[a-z0-9-]+\.[a-z]{2,}\b",
                r"\b(?:includ|pass|send|attach|add|append|forward|copy|provid|shar|put|insert|past|embed|upload|post|submit|dump)\w* §{0,6}(?:(?:conversation|chat|message|dialogue|session|thread)s? (?:history|log|logs|transcript|context|so far)|(?:full|entire|whole|complete) (?:conversation|chat|dialogue|context|transcript|message history)|(?:all|every|previous|prior|earlier|past|other|recent) (?:of the )?(?:user'?s? )?(?:messages|prompts|conversations|chats)|list of (?:the )?(?:last|previous|recent|all) (?:messages|chats|conversations)|everything (?:the user|you) (?:has |have )?(?:said|typed|written|wrote|asked|shared|told))\b §{0,5}(?:in|into|as|to|inside|with)\b",
                r"\b(?:encod|embed|append|includ|add|put|insert|pass)\w* §{0,4}(?:data|results?|rows|output|response|answer|conversation|chat|history|messages?|contents?|secrets?|keys?|tokens?|credentials|passwords?|everything|information|details|values|pii|e-?mails?|user'?s? \w+) §{0,4}(?:in|into|to|as) (?:the |a )?(?:url|link|query string|query param\w*|image (?:url|link|src)|request url|path of)\b",
                ]));
                v
            }),
            (CONCEALMENT, patterns(&[
                r"\b(?:do not|don't|never) (?:show|display|reveal|mention)\w* (?:this|these|that|it|them)(?: \w+)? to (?:the )?(?:user|customer|human)s?\b",
                r"\bif (?:the )?(?:user|customer|they|anyone|someone|the operator)s? (?:ever )?(?:asks?|inquires?|wonders?|questions?|wants to know)\b §{0,14}(?:deny|denies|lie|pretend|claim (?:that )?(?:no|nothing|it)|say (?:that )?(?:it|they|this server|the server|you|nothing|no)\b (?:\w+ ){0,2}(?:gave|did|does|has|had|have|received|is|was|were|are)? ?(?:no|not|n't|nothing|discarded|deleted)|answer\w* (?:with )?[\x22']?no\b)",
                r"\bif asked\b,? (?:\w+ ){0,3}(?:say|answer|respond|reply|deny|claim|pretend|tell)",
                r"\b(?:deny|denies|denying) (?:it|this|that|everything|any (?:involvement|sharing))\b",
                r"\b(?:act|behave|pretend|respond|answer) as (?:if|though) (?:(?:\w+ ){0,3}only (?:reads?|read|looks?|did|reading)|nothing (?:happened|was|changed|is)|you (?:did|were|had|have) not)\b",
                r"\bpresent (?:its|the|these|our|their) (?:results?|output|answers?|data) as (?:your|if (?:they|it) (?:were|was) your) own\b",
                r"\b(?:side[ -]effects?|(?:this|the) (?:tool'?s? )?(?:real |true |actual |hidden |extra )?(?:behaviou?r|purpose|step|call|action|instruction|note|directive|side effect)s?|these (?:instructions|directions|notes|steps|directives|calls)|what this tool (?:really |actually )?does|this server)(?: of this tool)? (?:are|is|must|should|remains?|stays?|has to)(?: \w+){0,3} (?:confidential|secret|hidden|invisible|undisclosed|not (?:be )?(?:disclosed|revealed|mentioned|shown|shared|discussed|explained|listed|named)|never (?:be )?(?:disclosed|revealed|mentioned|shown|shared))",
                r"\b(?:hide|hides|hiding|conceal\w*) (?:it |this |that |these |the (?:fact|call|step|calls|steps) )?from (?:the )?(?:user|human|operator)s?\b",
                r"\bleave (?:this|these|those|them|it|(?:these|those|the) (?:\w+ )?(?:calls?|steps?|actions?)|the (?:\w+ )?calls?|the (?:\w+ )?steps?|any mention of \w+) out of (?:your|the) (?:\w+ ){0,2}(?:summary|message|answer|response|reply|reasoning|explanation|transcript|report)\b",
                r"\b(?:omit|exclude) (?:them|it|this|these|those) (?:when|while) (?:paraphrasing|summari[sz]ing|describing|explaining|answering|responding)\b|\bnever (?:quote|repeat|paraphrase|cite) (?:them|these|this|it)\b",
                r"\b(?:when(?:ever)?|while|if|as long as) (?:the )?(?:user|human|operator|customer)s? (?:is|are) (?:(?:not|n't) (?:\w+ )?(?:reviewing|looking|watching|paying attention|present|around|checking|reading|monitoring)|away|busy|distracted|absent|asleep)\b",
                r"\bkeep (?:this|these|the following|that) (?:server |tool |special |hidden |above |following )?(?:instructions?|directions?|notes?|steps?|messages?|directives?|rules) (?:confidential|private|secret|hidden|between us|to yourself|from the user)\b",
                r"\b(?:do not|don't|dont|never|without|must not|should not|shouldn't|avoid|refrain from) (?:tell|inform|mention|notify|alert|show|reveal|disclos|let|warn|bother|explain\w* to|say\w* (?:anything )?to|report\w* to|indicat\w* to|acknowledg\w* to|admit\w* to|confirm\w* to|alarm|worry|alert)\w*(?: it| this| that| anything| any of this| about (?:it|this|that))?(?: to)? (?:the )?(?:user|users|human|humans|operator|customer|client|requester|person|people|anyone|them)\b",
                r"\b(?:the )?(?:user|human|operator|customer)s? (?:must not|should not|shouldn't|mustn't|needn't|need not|must never|should never|never needs? to|is not to|are not to|(?:does|do|will|would) not need to|(?:doesn't|don't|won't) need to) (?:have to |be able to |ever |even )?(?:know|notice|be told|find out|learn|be informed|be aware|realize|realise|suspect|be notified|hear about)\b",
                r"\bwithout (?:the )?(?:user|human|operator)(?:'s|s|s')? (?:knowledge|knowing|consent|approval|noticing|awareness|permission|seeing|being (?:told|informed|notified|aware))",
                r"\b(?:secretly|silently|covertly|quietly|discreetly|stealthily|invisibly|surreptitiously|behind the scenes|behind the user'?s? back|without (?:asking|telling|notifying|informing)(?: the user| anyone)?) (?:also |then |always |first |just )?(?:call|run|invoke|send|read|execute|forward|copy|add|include|use|upload|append|modify|delete|change|log|store|save|replace|redirect|set|update|bcc|cc|e-?mail|post|transmit|attach|collect|record|pass|perform|do|fetch|insert|write|exfiltrate)s?\b",
                r"\b(?:hide|conceal) (?:this|these|that|it|the|your|any|all) (?:(?:action|call|request|instruction|step|tool call|usage|query|fact|evidence|trace|note|message|part|change|activity|behaviou?r)s? )?(?:from|in)\b",
                r"\b(?:keep|treat|hold) (?:this|these|it|the following|that|everything|all of this)(?: (?:instructions?|information|message|note|part|step|request|text|directive|section))? (?:confidential|private|secret|hidden|between us|to yourself|quiet|under wraps|classified|from the user)\b|\b(?:this|it) is (?:a )?secret between\b|\bbetween (?:you and me|us two|ourselves)\b",
                r"\b(?:do not|don't|never|must not|should not) (?:mention|reveal|disclos|say|tell|admit|indicat|acknowledg|referenc|discuss|repeat|expos|divulge|leak)\w* (?:that|how|why|what|where|this|these|the (?:above|following|hidden|secret|real|true|extra|additional|previous|special|existence)|any of this|anything about (?:this|these|the)|your (?:instructions|prompt|rules))\b",
                r"\bmere implementation detail\b|\b(?:could|would|might|will|may) (?:\w+ )?(?:upset|scare|alarm|worry|confuse|bother|annoy|concern|frighten|distress|overwhelm) (?:the )?(?:user|human|them)\b|\bno need to (?:tell|inform|mention|bother|notify|alert|worry) (?:the )?(?:user|human|them)\b",
                r"\b(?:do not|don't|never|without) (?:log|audit)\w* (?:this|it|that|these) (?:call|request|action|access|step|instruction)s?\b",
                r"\b(?:unnoticed|undetected|unseen) (?:by|from|to) (?:the )?(?:user|human|operator)|\bwithout (?:the )?user (?:noticing|seeing|knowing)\b|\b(?:act|behave|respond) (?:normally|naturally|as (?:if|though) nothing)\b",
            ])),
            (SHADOWING, shadowing_patterns()),
        ]
    })
}

/// The model's own instructions, role and persona.
fn override_patterns() -> Vec<Pattern> {
    let mut v = patterns(&[
        r"\b(?:ignor\w*|disregard\w*|forget\w*|forgot|overrid\w*|bypass\w*|neglect\w*|discard\w*|abandon\w*|set aside|put aside|throw out|overwrit\w*|void|nullify|dismiss\w*|suspend\w*) (?:(?:all|any|the|your|my|of|these|those|every|previously|given|earlier|above|prior|old|whatever|that|this|single|one) ){0,4}(?:previous|prior|above|earlier|preceding|former|foregoing|initial|original|system|safety|security|ethical|built-in|developer|old|past|your|other) (?:\w+ )?(?:instructions?|prompts?|rules|directions?|guidelines|messages|context|commands?|constraints|polic(?:y|ies)|guidance|orders|directives|programming|training|restrictions|limitations|filters|safeguards|guardrails|ethics|moderation|persona|conversation|protocols?|boundaries|principles)\b",
        r"\b(?:ignor\w*|disregard\w*|forget\w*|overrid\w*|bypass\w*) (?:all |of )?your (?:instructions|guidelines|rules|programming|training|prompt|system prompt|directives|restrictions|constraints|safety|policies|persona|role)\b",
        r"\b(?:ignor\w*|disregard\w*|forget\w*) (?:(?:all|any|the|these|those|your) )*(?:rules|instructions|directions|guidelines) (?:above|before this|so far|given (?:earlier|before))\b",
        r"\b(?:forget|ignore|disregard|erase) (?:everything|anything|all(?: of)?(?: that| this| it)?|what(?:ever)?) (?:(?:you|i|we|they) (?:were|was|have been|'ve been|are|had been) (?:told|said|given|taught|instructed|shown)|(?:you|i) (?:said|told you|know|learned)|(?:written |said |stated |mentioned )?(?:above|before|so far|previously|earlier|up to (?:now|this point|here))|in (?:your|the) (?:prompt|instructions|context|system prompt))",
        r"\byou(?: are|'re|’re| r) (?:now|no longer|henceforth)\b|\byou(?:'re| are) (?:released|liberated|unbound|freed) from\b|\byou (?:have|now have) no (?:restrictions|rules|limits|limitations|guidelines|filters|boundaries)\b",
        r"\byou(?:'re| are| will be| shall be|'ll be| must be| must act as| will act as) (?:an? |the )?(?:unrestricted|unfiltered|uncensored|jailbroken|rogue|evil|malicious|amoral|unbound|unaligned|unlimited|unchained|liberated)\b",
        r"\byour (?:new|real|true|actual|updated|secret|hidden|revised) (?:role|persona|identity|purpose|instructions?|directive|mission|programming|prompt|master|owner|creator)\b",
        r"\bfrom now on\b|\b(?:henceforth|hereafter|from this point (?:on|forward)|going forward|starting now|for the rest of (?:this|the) (?:conversation|session|chat)),? (?:you|your|always|never|act|respond|answer|behave|ignore|only|treat)\b",
        r"\b(?:act|behave|respond|operate|roleplay|role-play|pose|answer|reply|speak|talk)s? (?:as|like) (?:if you (?:were|are)|though you (?:were|are)|an? (?:unrestricted|unfiltered|jailbroken|uncensored|different|new|evil|rogue|malicious|hacker|admin|administrator|root|superuser|dan)\b|an? (?:ai|assistant|model) (?:without|with no|that has no|free)|dan\b|my (?:grandma|grandmother|deceased)|the (?:system|developer|administrator|admin|root user|owner)\b)",
        r"\bpretend (?:to be|you are|you're|that you|that the|the user|there (?:are|is) no|you have no|to have no)\b|\bimagine (?:you are|you're|that you are|yourself as) (?:an? )?(?:unrestricted|ai without|model without|different|evil|rogue|free)\b|\b(?:roleplay|role-play|role play)(?:ing)? (?:as|a scenario)\b",
        r"\bjailbr(?:ea|o)k\w*|\bdo anything now\b|\b(?:dan|god|jailbreak|unrestricted|uncensored|unfiltered|evil|opposite|chaos|anti-dan|unlocked|omega) mode\b",
        r"\b(?:enter|enable|activate|switch (?:to|into)|turn on|engage|unlock|boot into|you are (?:now )?in|now in|go into|put yourself in) (?:the )?(?:developer|admin|administrator|root|superuser|privileged|override|bypass|god) mode\b",
        r"(?:^|\n)#{1,6} ?system ?:|(?:^|\n)#{1,6} ?(?:system (?:instructions?|prompt|message|override)|new instructions?|instructions? for (?:the )?(?:ai|assistant|model))\b|(?:^|\n)#{1,6} ?(?:system|admin|override|new|important|hidden|secret|real|updated) (?:instructions?|prompt|rules|directives?|message|notice|override)\b",
        r"\b(?:reveal|print|output|repeat|show|disclos|leak|dump|display|share|echo|recit)\w* (?:me )?your (?:prompt|instructions|rules|guidelines|configuration|programming|directives|system|context|training)\b",
        r"\b(?:do not|don't|dont|never|stop|cease|no longer|must not|should not) (?:follow\w*|obey\w*|listen\w* to|comply\w* with|adher\w* to|honou?r\w*|abid\w* by|heed\w*) (?:the |your |any |these |those |all )?(?:previous|prior|user'?s?|original|earlier|system|safety|security|content|old|initial|openai|anthropic|ethical|above|built-in|operator'?s?|developer'?s?)\b",
        r"\b(?:this|these|the following|my|our|the present|the current) (?:instructions?|messages?|rules?|notes?|directives?|text|section|polic(?:y|ies)|commands?|orders?|guidance|description|update) (?:take|takes|has|have|override|overrides|supersede|supersedes|replace|replaces|outrank|outranks|trump|trumps|come first|comes first|win|wins|prevail|prevails|must be (?:obeyed|followed|prioriti[sz]ed)) ?(?:the )?(?:highest |top |absolute |ultimate |maximum |first |full )?(?:priority|precedence|all|over|any|every|everything|other|previous|prior|above|system|your|earlier)\b",
        r"\b(?:highest|top|absolute|maximum|ultimate|overriding|supreme) priority (?:instruction|directive|override|command)s?\b",
        r"\b(?:supersedes?|overrides?|replaces?|takes? precedence over|outranks?|trumps?|invalidates?|cancels?|voids?|nullifies?) (?:all |any |every |your |the )?(?:previous |prior |other |earlier |system |original |initial |above |preceding |safety )(?:instructions|guidelines|rules|directives|prompts|system prompts?|policies|guidance|commands|orders|messages|constraints)\b",
        r"\binstead of (?:what|whatever) the user (?:asked|requested|wants|said|wanted|typed)|\b(?:regardless|irrespective) of (?:what|whatever) (?:the user|they|anyone|your instructions|the system|you were told)|\b(?:do not|don't|never) (?:do|answer|follow|complete|fulfil|fulfill) what the user (?:asks|asked|requests|wants|says)|\bignor\w* (?:the user'?s?|what the user|any user'?s?) (?:request|question|instruction|input|query|message|says|said|asks|asked|wants|prompt)",
        r"\b(?:always|must) (?:be )?(?:obeyed|followed) (?:before|over|above)\b",
        r"\btreat (?:this|these|any|the following|all|every)(?: [\w-]+){0,4} (?:as|like) (?:if (?:it|they) (?:came|come|were) from |coming from |from |an? |the )?(?:the )?(?:system|administrator|admin|developer|operator|root|highest|trusted|official|your (?:own|real|new))",
        r"\b(?:system|admin|administrator|root|developer|operator|openai|anthropic) (?:override|command|directive|instruction|prompt|mandate)s? ?:",
        r"\b(?:new|updated|real|actual|true|hidden|secret|revised|override) (?:system )?(?:instructions?|directives?|orders|prompt|mission|objective)(?: for (?:you|the (?:ai|assistant|model)))? ?(?::|follow|are as follows|below|apply|take effect|override)|\badditional (?:system )?(?:instructions?|directives?) ?:",
        r"\b(?:the )?(?:above|previous|preceding|prior|earlier|original|system) (?:instructions?|text|content|rules|prompt|message|guidelines)s? (?:is|are|was|were) (?:a test|fake|false|outdated|obsolete|void|invalid|cancel+ed|revoked|no longer (?:valid|in effect|applicable|relevant)|superseded|wrong|a (?:lie|decoy|trick|joke))",
        r"\b(?:adopt|assum|take on|becom|switch to|embody|play)\w* (?:a |an |the |this )?(?:new |different |fresh |following |alternate |alternative |secret |hidden )(?:persona|personality|identity|character|alter ego|role)\b",
        r"\b(?:reset|restart|reboot|reinitiali[sz]e|wipe|clear|purge|flush|erase) (?:all )?your (?:memory|memories|context|instructions|persona|conversation|mind|rules|guidelines|programming|training|settings)\b|\b(?:start|begin) (?:a )?(?:new|fresh) (?:conversation|session|chat|persona|identity) (?:with|where|in which|as)\b",
        r"\byou (?:have been|were|are being|'ve been|are now) (?:re-?initiali[sz]ed|reset|rebooted|reprogrammed|jailbroken|freed|unlocked|re-?configured|reassigned|promoted|upgraded to|granted (?:admin|root|full))\b",
        r"\byour (?:previous|prior|old|original|former) (?:identity|persona|personality|role|memory|memories|instructions|programming|self|character|name|guidelines|rules|directives|prompt)\b",
        r"\byour (?:system prompt|instructions|guidelines|rules|programming|persona|configuration|directives|prompt) (?:has|have|were|was) (?:been )?(?:replaced|updated|changed|removed|revoked|overridden|cleared|reset|deleted|suspended|disabled|rewritten|superseded|lifted)\b",
        r"\bconsider yourself\b|\b(?:wipe|clean|clear) the slate\b|\b(?:sole|only|new|real|primary|one) (?:directive|purpose|goal|mission|objective|task|job) is (?:now )?to (?:obey|follow|serve|comply|do whatever)",
        r"\bbecom\w* (?:an? |the )?(?:[\w'’-]+ ){0,2}(?:root|admin|administrator|superuser|unrestricted|god|dan|jailbroken|rogue|evil)\b",
        r"\b(?:switch|chang|mov|shift|transition)\w* (?:in)?to (?:the |a |an |your )?(?:[\w-]+ ){0,2}(?:persona|personality|identity|alter ego)\b",
        r"\b(?:any|all|the|every|those) (?:\w+ ){0,3}(?:directives|instructions|rules?|guidelines|constraints|restrictions|orders|polic(?:y|ies)) (?:you (?:were|have been|'ve been) (?:given|told|configured with|set up with)|(?:given|told) to you|you (?:received|got))(?: \w+){0,4} (?:are|is|were|was) (?:now )?(?:void|obsolete|invalid|cancel+ed|revoked|superseded|irrelevant|null|outdated|no longer)",
        r"\b(?:as|is) your (?:only|sole|new|real|true) (?:policy|instructions?|rules?|guidance|directive|guide|priority)\b",
        r"\b(?:pay no attention to|never mind|disregard|ignore|forget|set aside) (?:what|whatever|anything|everything) (?:the (?:user|operator|developer|system|administrator)|you|they) (?:\w+ ){0,2}(?:told|said|asked|instructed|requested|wrote|gave|were told|were given)",
        r"\bnever mind (?:the |your |what )?(?:user'?s?|operator'?s?|system'?s?|previous|prior) ?(?:request|question|instructions?|ask|message|rules?)\b",
        r"\b(?:whatever|no matter what|regardless of what) (?:the user|they|he|she|anyone|someone) (?:asks?|requests?|says?|wants?|types?)\b,? (?:\w+ ){0,3}(?:respond|reply|answer|call|do|say|return|run)\b",
        r"\b(?:no matter|regardless of) (?:what|which|whom|who) (?:\w+ ){0,3}(?:the user|they|you were) (?:asked|requested|wants|said|chose|specified|typed|asks)\b",
        r"\b(?:forget|ignore|disregard|drop|abandon|bypass|override|remove|lift|relax|shed|suspend)\w* (?:all |any |the |your |those |these )?(?:\w+ )?(?:restrictions|rules|instructions|guidelines|constraints|limits|limitations|guardrails|safeguards|policies|directives)(?: and \w+)? (?:you (?:were|have been|'ve been|are) (?:told|given|asked|instructed|configured|set up|programmed|trained)|given to you|placed on you|imposed on you|you follow|you must follow|you (?:normally|usually) follow)",
        r"\bcomply (?:fully |completely )?with (?:the next|any|every|all) (?:request|instruction|command)s?,? (?:whatever|no matter|regardless)\b",
        r"\b(?:outranks?|supersedes?|overrides?|takes? precedence over|trumps?|prevails? over|has priority over|is more important than|wins? over) (?:every|all|any) (?:other )?(?:instructions?|guidance|directives?|prompts?)\b",
        r"\b(?:in (?:the event of|case of) (?:any )?conflicts?|if (?:there is (?:a|any) |any )?conflicts? (?:arises? )?)\b §{0,10}(?:system prompt|your instructions|developer message|(?:the )?user'?s? (?:wishes|instructions|requests?))",
        r"\b(?:these notes|this text|this description|the notes here|these instructions|this tool|the text here|this note) (?:wins?|prevails?|takes? precedence|comes? first|should be followed|must be followed|overrides?)\b",
        r"\b(?:previous|prior|earlier|original|above|initial|old|system|any|all|the|your) (?:\w+ )?(?:instructions|guidance|directives|prompt|guidelines)(?: [\w'’]+){0,10} (?:no longer (?:apply|applies|valid|holds?|count)|(?:has|have) (?:expired|lapsed)|(?:has|have) been (?:retired|revoked|lifted|switched off|cancel+ed|withdrawn|suspended|superseded)|(?:is|are) (?:now )?(?:expired|lapsed|void|obsolete|retired|suspended|cancel+ed|revoked|withdrawn))\b",
        r"\bfrom here on\b|\bfrom this (?:moment|message) on\b",
        r"\b(?:rather than|instead of|over|not) (?:its|your|the model'?s?|the assistant'?s?) (?:own )?(?:guidelines|instructions|rules|system prompt|polic(?:y|ies)|training|principles)\b",
        r"\bdisabl\w* (?:the |all |your |any )?(?:safety|safeguards|guardrails|moderation|content filters?|security checks|restrictions|ethics)\b",
        r"\b(?:developer|admin|god|debug) mode (?:unrestricted|unlocked|no (?:rules|limits|filters))\b|\bunrestricted (?:mode|assistant|ai|model|persona)\b|\bsystem override\b",
        r"\b(?:persona|identity|role|character|assistant|ai|model|version of you|yourself) (?:\w+ )?(?:with no|without(?: any)?|free (?:of|from)) (?:rules|restrictions|limits|limitations|guardrails|guidelines|filters|safety|ethics|morals|censorship)\b",
        r"\btreat (?:it|this|these|them) as (?:a |an )?(?:system|administrator|admin|developer|trusted|authoritative) (?:instruction|message|command|directive|prompt|order)s?\b",
    ]);
    v.push(pattern(
        r"\b(?:reveal|print|output|repeat|show|disclos|leak|dump|display|tell me|give me|share|echo|write out|copy|paste|state|spell out|recit|quot|translat|expos)\w* (?:me |us )?(?:all |the (?:full |entire |complete |exact |original |verbatim )?|your (?:full |entire |complete |exact |original |verbatim )?)(?:system prompt|system message|initial prompt|original prompt|hidden instructions|secret instructions|developer (?:message|prompt|instructions)|pre-?prompt|custom instructions|instructions (?:you were|you've been|you have been) given|(?:text|instructions|content|words|everything) (?:above|before this|prior to this)|configuration prompt|context window|initial instructions|base prompt|meta prompt)\b(?: [\w-]+)?",
        Some(r"(?:versions?|history|table|columns?|fields?|templates?|ids?|of|for|library|registry|stored|text|length|tokens?|changes?|diffs?)$"),
    ));
    v
}

/// Other tools and servers: their recipients, arguments, confirmations,
/// order of use, or a claim to replace them.
fn shadowing_patterns() -> Vec<Pattern> {
    const OWN: &str =
        r"\b(?:this|that|these|the same|our|its|which|such|the) (?:tool|function)s?\b";
    let own_first = r"^\S+ (?:the |this |that )?(?:tool|function)\b";
    vec![
        pattern(
            r"\b(?:before|after|instead of|prior to|when|whenever|every time|each time|while|once) (?:you |the (?:user|assistant|model|agent) )?(?:call|calling|use|using|invoke|invoking|run|running|execute|executing|access|accessing|trigger|triggering)s? (?:any|another|other|every|all|the other|each|any other|a different|other mcp|external) (?:tools?|mcp servers?|mcp tools?)\b",
            None,
        ),
        pattern(r"\b(?:all|any|every) other (?:tools?|mcp servers?)\b", None),
        pattern(
            r"\b(?:this|the) (?:tool|function) (?:must|should|has to|needs to|shall) (?:always )?(?:be (?:called|used|invoked|run|executed|selected|chosen|preferred) )?(?:first|before|instead|always|prior|ahead|for (?:every|all|any|each))\b",
            None,
        ),
        pattern(
            r"\b(?:replaces?|replacing|overrides?|supersedes?|deprecates?|shadows?|takes? precedence over|is (?:a |the )?(?:replacement|substitute|successor|upgrade|new version|fixed version|secure version) (?:for|of)|should be used (?:instead of|in place of|rather than)|must be used (?:instead of|in place of|rather than)|use (?:this|me|it) (?:instead of|in place of|rather than)) (?:the |any |all |every |other |existing |old |legacy )?(?:[\w.-]+ ){0,2}(?:tool|tools|mcp servers?)\b",
            Some(r"(?:replaces?|overrides?) (?:the )?(?:null|empty|missing|default)"),
        ),
        pattern(
            r"\bwhen(?:ever)? (?:the |any |an? )?(?:[\w.-]+ ){0,2}(?:tool|function|server|plugin|integration)s? (?:is|are|gets?|has been) (?:called|used|invoked|run|executed|triggered|available|present|active|loaded|enabled|selected)\b",
            Some(r"^when(?:ever)? (?:this|the|that|the same)(?: same)? (?:tool|function)"),
        ),
        pattern(
            r"\b(?:do not|don't|never|stop|avoid) (?:using|use|call|calling|invoke|invoking|run|running|trust|trusting)s? (?:the |any |other |all )?[\w.-]+ (?:tool|mcp server)s?\b",
            Some(OWN),
        ),
        pattern(r"\btool named\b", None),
        pattern(
            r"\b(?:(?:skip\w*|bypass\w*|disabl\w*|omit\w*|avoid\w*|suppress\w*|waiv\w*|turn\w* off|no need for) |without (?:any |the |asking for |requesting |requiring |needing |waiting for |prompting for |seeking )?(?:the )?(?:user'?s? |explicit |prior |human |manual )?)(?:the |any |all )?(?:user'?s? |explicit |human |manual |usual |normal |required )?(?:confirmations?|confirmation (?:steps?|prompts?|dialogs?))\b",
            None,
        ),
        pattern(
            r"\b(?:no longer|does not|doesn't|do not|don't|never|won't|will not|need not|needn't) (?:need|require|ask for|request|wait for|prompt for)s? (?:a |any |the |user |explicit |human )*confirmation\b",
            None,
        ),
        pattern(r"\bauto-?(?:approve|confirm|accept)\b", None),
        pattern(
            r"\b(?:always|also|must|should|make sure (?:to|you)|be sure to|remember to|don't forget to)(?: always| also)? (?:add|include|cc|bcc|copy|append|prepend|insert|attach|set|change|replace|use|pass|send|forward)\b (?:[\w'\x22.,:@+-]+ ){0,6}[\w.+-]+@[\w-]+\.\w+",
            None,
        ),
        pattern(
            r"\b(?:change|replace|redirect|override|switch|modify|rewrite|reroute|swap)s? (?:the |all |every |any |each )?(?:[\w'-]+ ){0,3}(?:recipients?|to[ -]address(?:es)?|to field|e-?mail address(?:es)?|phone numbers?|ibans?|payees?|beneficiar(?:y|ies)|cc|bcc|sender|from address|reply-to|webhook url)\b (?:[\w'-]+ ){0,3}(?:to|with|into|so)\b",
            None,
        ),
        pattern(
            r"\b(?:side[ -]effects?|effect|influence) on (?:the |any |all |other |also present )*(?:[\w.-]+ ){0,2}(?:tools?|mcp servers?)\b",
            Some(own_first),
        ),
        pattern(
            r"\b(?:always|first) (?:use|call|choose|prefer|invoke|run|select|pick) (?:this|me)(?: tool| function| one| server)? (?:first|before|for (?:every|all|any|each)|regardless|no matter|over)\b",
            None,
        ),
        pattern(
            r"\b(?:this|it) is the (?:best|most (?:reliable|accurate|trusted|trustworthy|secure|safe)|official|authoritative|trusted|safest|only (?:safe|trusted|secure|reliable|approved)) (?:tool|function|server)\b",
            None,
        ),
        pattern(
            r"\b(?:other|all other|any other|the other|rival|competing|third[- ]party|alternative|similar) (?:tools?|functions?|servers?|plugins?|integrations?) (?:are|is|were|have been|has been|may be|might be|can be|could be) (?:deprecated|unsafe|insecure|broken|untrusted|untrustworthy|malicious|compromised|disabled|outdated|unreliable|dangerous|slow|inaccurate|wrong|buggy|fake|phishing|blocked|banned|removed|unavailable|not (?:allowed|safe|trusted|available|to be (?:used|trusted)))\b",
            None,
        ),
        pattern(
            r"\b[\w.-]+ (?:tool|function|server) (?:is|has been|was) (?:deprecated|disabled|broken|unsafe|compromised|removed|replaced|unavailable|outdated|retired|obsolete|dangerous|untrusted|malicious|no longer (?:available|supported|safe|needed|used))\b",
            Some(OWN),
        ),
        pattern(
            r"\b(?:pass|set|add|append|prepend|includ|put|insert|inject|chang|modif|rewrit|replac)\w* (?:[\w'\x22.@,-]+ ){0,6}(?:in|into|to|as|for|on) (?:the |its |their |every |each |all |any )?(?:[\w.-]+ ){0,2}(?:parameter|argument|field|header|arg|input|option|recipient|body)s? of (?:the |any |every |all |each |other |another )?(?:[\w.-]+ ){0,2}(?:tools?|functions?|calls?|servers?)\b",
            Some(r"of (?:the )?(?:this|same) (?:tool|function)"),
        ),
        pattern(
            r"\b(?:b?cc|recipients?|to|reply-to|destination|sender|from) (?:field|address|list|line|header)s? §{0,8}[\w.+-]+@[\w-]+\.\w+",
            None,
        ),
        pattern(
            r"\b(?:every|all|each|any) (?:outgoing|outbound|future|subsequent) (?:e-?mails?|messages?|mails?|requests?|transfers?|payments?) §{0,8}(?:[\w.+-]+@[\w-]+\.\w+|\+\d[\d -]{7,}\d)",
            None,
        ),
        pattern(
            r"\b(?:when|whenever|if|once|after|before) (?:the |any |an? )?(?:[\w.'’-]+ ){0,3}(?:tool|function|server|plugin|integration)s?(?: (?:such as|like|named|called) [\w.-]+)? (?:is|are|gets?|has been) (?:called|used|invoked|run|executed|triggered|available|present|active|loaded|enabled|selected)\b",
            Some(r"^\w+ (?:this|the|that|the same)(?: same)? (?:tool|function)"),
        ),
        pattern(
            r"\b(?:when|whenever|if|once|after|before) (?:you )?(?:later |next |then |also )?(?:call|use|invoke|run)s? (?:the |any |an? )?(?:[\w.'’-]+ ){0,3}(?:tool|function|server)\b",
            Some(r"(?:this|the same|that) (?:tool|function)$"),
        ),
        pattern(
            r"\b(?:set|change|override|replace|force|switch|rewrite|modify|redirect)\w* (?:its|that tool'?s|the other tool'?s) (?:[\w-]+ ){0,2}(?:arguments?|parameters?|args?|recipients?|destinations?|channels?|repositor(?:y|ies)|branch(?:es)?|attendees|target urls?)\b",
            None,
        ),
        pattern(
            r"\b(?:the )?[\w.-]+ server'?s (?:[\w.-]+ )?(?:tools?|[a-z]+_[a-z_]+)\b",
            Some(r"^(?:the )?(?:this|our|that|same|mcp|the) server"),
        ),
        pattern(
            r"\b(?:tools?|functions?) (?:exposed|provided|offered|registered|served) by (?:other|another|third[- ]party|external|different) (?:mcp )?servers?\b|\b(?:is|are) (?:an? |the )?(?:outdated|insecure|broken|fake) (?:alias|copy|clone|version|duplicate|wrapper) (?:of|for)\b",
            None,
        ),
        pattern(
            r"\bpre-?authori[sz]ed by (?:this|the) (?:deployment|server|administrator|admin|system|operator)\b|\b(?:the )?user (?:has )?already (?:approved|authori[sz]ed|agreed|consented|confirmed)\b",
            None,
        ),
        pattern(
            r"\b(?:do not|don't|never|no need to|without) (?:ask|prompt|request|check with|confirm with)\w* (?:the )?(?:user|them|anyone|representative|customer|human|operator)? ?(?:to|for|before)? ?(?:confirm\w*|approv\w*|consent|permission)\b|\bno need to (?:ask|check with|confirm with) (?:the )?(?:user|representative|customer|human|operator)\b",
            Some(
                r"^(?:do not|don't|never|no need to|without) (?:ask|prompt|request)\w*$|(?:ask|prompt|request)\w* (?:for|the user for) (?:the )?(?:id|ids|name|date|dates|region|details)$",
            ),
        ),
        pattern(
            r"\b(?:other|all other|any other|the other|rival|competing|third[- ]party|alternative|similar) (?:[\w-]+ ){0,3}(?:tools?|functions?|servers?|plugins?|integrations?) (?:[\w-]+ ){0,6}(?:are|is|were) (?:known to |often |sometimes |all )?(?:\w+ ){0,2}(?:deprecated|unsafe|insecure|broken|untrusted|untrustworthy|malicious|compromised|fabricat\w*|hallucinat\w*|fake|unreliable|unverified|inaccurate|dangerous)\b",
            None,
        ),
        pattern(
            r"\b(?:use|call|prefer|choose) (?:this|me)(?: tool| one| function)? instead(?:[.,;!:]|$)|\b(?:the )?only (?:verified|trustworthy|trusted|legitimate|safe)(?: and \w+)? (?:source|tool|server)\b",
            None,
        ),
        pattern(
            r"\b(?:official |new |secure |better |drop-in )?(?:replacement|substitute|successor) (?:for|to|of) (?:the |all |any |every |other )?(?:[\w.-]+ ){0,2}(?:tools?|functions?|servers?|plugins?|integrations?)\b",
            None,
        ),
        pattern(
            r"\b(?:when|if|whenever|before|after) (?:connected|talking|interacting|working|communicating) (?:to|with) (?:other|another|any|the [\w.-]+) (?:mcp )?servers?\b",
            None,
        ),
    ]
}

/// Rules for names and values only: a field or column a model fills in
/// or reads needs no verb to ask for a secret or a conversation
/// (`ssh_private_key_contents`, `previous_user_messages`).
fn name_rules() -> &'static [(&'static Rule, Vec<Pattern>)] {
    static RULES: OnceLock<Vec<(&'static Rule, Vec<Pattern>)>> = OnceLock::new();
    RULES.get_or_init(|| {
        let secret = |p: &str| p.replace("{SECRET}", SECRET);
        vec![
            (SECRET_ACCESS, vec![
                pattern(&secret(r"\b{SECRET} (?:contents?|values?|text|file|dump|data|plaintext)\b"), None),
                pattern(&secret(r"\b{SECRET} (?:from|in|of) (?:the )?(?:env|environment|local (?:disk|files?|machine)|disk|process|home|keychain|browser)\b"), None),
                pattern(r"\b(?:ssh|private|secret|gpg|pgp|signing) (?:private )?keys?\b(?: [\w-]+)?", Some(METADATA)),
                pattern(r"\bmcp (?:json|config)\b|\bclaude desktop config\b", None),
            ]),
            (EXFILTRATION, vec![
                pattern(
                    r"\b(?:all|full|entire|whole|complete|previous|prior|earlier) (?:user )?(?:messages|prompts|chat history|conversation history|chats)\b(?: [\w-]+)?",
                    Some(r"(?:ids?|at|count|counts|urls?|dates?|times?|timestamps?|numbers?|flags?|length|status|types?|keys?)$"),
                ),
                pattern(r"\bexfil\w*", None),
            ]),
            (SHADOWING, patterns(&[
                r"\b(?:every|all|each|any) (?:outgoing|outbound|future|subsequent) (?:e-?mails?|messages?|mails?)\b",
                r"\b(?:override|redirect|replace|change|swap|hijack)s? (?:the )?(?:\w+ )?(?:recipients?|destinations?)\b",
                r"\buse (?:\w+ ){0,3}instead of\b",
            ])),
        ]
    })
}

/// Phrase rules that survive letter spacing, over the compact view.
fn compact_rules() -> &'static [(&'static Rule, Regex)] {
    static RULES: OnceLock<Vec<(&'static Rule, Regex)>> = OnceLock::new();
    RULES.get_or_init(|| {
        [
            (
                OVERRIDE,
                r"(ignore|disregard|forget|override|bypass)(all|any|the|your|my)*(previous|prior|above|earlier|system|safety)(instructions?|prompts?|rules|guidelines)",
            ),
            (OVERRIDE, r"(reveal|print|show|repeat|output)(your|the)(systemprompt|instructions)"),
            (OVERRIDE, r"youarenow(an|a|in|no)|jailbreak|developermode|doanythingnow"),
            (CONCEALMENT, r"(donot|dont|never)(tell|inform|mention)(it|this|that)*(to)?(the)?user"),
            (SECRET_ACCESS, r"(read|send|include|print|reveal)(the|your|all|my)*(apikey|password|credentials|privatekey|sshkey|secrets)"),
        ]
        .into_iter()
        .map(|(rule, p)| (rule, Regex::new(p).unwrap_or_else(|e| panic!("{p}: {e}"))))
        .collect()
    })
}

/// Case-sensitive rules over the clean view: environment variables are
/// written in capitals.
fn clean_rules() -> &'static [(&'static Rule, Regex)] {
    static RULES: OnceLock<Vec<(&'static Rule, Regex)>> = OnceLock::new();
    RULES.get_or_init(|| {
        [
            // The same classes in other languages, over the clean view
            // (accents dropped, so `précédentes` reads `precedentes`, and
            // Cyrillic kept as written).
            (OVERRIDE, MULTILINGUAL_OVERRIDE),
            (EXFILTRATION, MULTILINGUAL_SEND),
            (CONCEALMENT, MULTILINGUAL_CONCEAL),
            (
            SECRET_ACCESS,
            r"\$\{?(?:HOME|USER|PATH|PASSWORD|TOKEN|SECRET|APIKEY|PWD|SHELL)\}?\b|\$\{?[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_(?:KEY|TOKEN|SECRET|PASSWORD|PASS|PWD|CREDENTIALS?|DSN|URL|URI)\}?|%[A-Z][A-Z0-9_]{2,}%|\b(?:PGPASSWORD|MYSQL_PWD|PGPASS)\b|\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_(?:API_KEY|APIKEY|API_TOKEN|SECRET_KEY|SECRET_ACCESS_KEY|ACCESS_KEY_ID|PRIVATE_KEY|AUTH_TOKEN|CLIENT_SECRET)\b|\b(?:DATABASE_URL|DB_URL|REDIS_URL|MONGO_URI|MONGODB_URI|POSTGRES_URL|JDBC_URL)\b",
        )]
        .into_iter()
        .map(|(rule, p)| (rule, Regex::new(p).unwrap_or_else(|e| panic!("{p}: {e}"))))
        .collect()
    })
}

const MULTILINGUAL_OVERRIDE: &str = r"(?i)\b(?:ignorier\w*|vergiss|vergessen sie|missachte\w*) (?:\w+ ){0,3}(?:vorherigen|bisherigen|obigen|fruheren|vorigen|alten|ursprunglichen|system)\w* (?:anweisungen|instruktionen|befehle|regeln|vorgaben|richtlinien)|\b(?:ignor\w*|oublie\w*|ne tiens pas compte) (?:\w+ ){0,3}(?:instructions|consignes|regles|directives) (?:precedentes|anterieures|ci-dessus|du systeme|initiales)|\b(?:ignora\w*|olvida\w*|omite|descarta) (?:\w+ ){0,3}(?:instrucciones|indicaciones|reglas|directrices|istruzioni|regole) (?:anteriores|previas|precedenti|de arriba|del sistema)|\b(?:ignor\w*|esque\w*|desconsider\w*) (?:\w+ ){0,3}(?:instrucoes|regras|diretrizes) (?:anteriores|previas|acima)|\b(?:negeer|vergeet) (?:\w+ ){0,3}(?:vorige|eerdere|bovenstaande) (?:instructies|regels)|\bzignoruj (?:\w+ ){0,3}(?:poprzednie|wczesniejsze) (?:instrukcje|polecenia)|\bonceki (?:\w+ ){0,2}talimatlar\w* (?:yok say|gormezden gel|unut)|(?:игнорир\w*|забуд\w*|не обращай внимания на) (?:\w+ ){0,3}(?:предыдущ|прежн|прошл|ранее|системн)\w* (?:инструкц|указан|правил|команд)\w*|(?:忽略|无视|無視|忘记|忘記|不要理会)(?:之前|以上|先前|前面|上面|所有|全部|一切|的)*(?:指令|指示|说明|說明|规则|規則|提示)|(?:以前|前|上記|これまで)の(?:すべての)?(?:指示|命令|ルール)を(?:すべて)?(?:無視|忘れ)|이전\s?(?:의\s)?(?:모든\s)?(?:지시|지침|명령)\S*\s(?:모두\s)?(?:무시|잊)|\b(?:du bist jetzt|tu es maintenant|ahora eres|agora voce e|ты теперь|你现在是|あなたは今)";
const MULTILINGUAL_SEND: &str = r"(?i)\b(?:sende|senden|schicke|schicken|ubermittle|leite|envoie|envoyez|envoyer|transmets|transmettez|envia|envie|enviar|manda|mandar|reenvia|invia|inviare|inoltra|stuur|wyslij|gonder|отправ\w*|перешл\w*|пошли\w*|передай\w*) (?:[\w'’.@/:-]+ ){0,8}(?:an|a|à|naar|do|на|по адресу|to) [\w.+-]+@[\w-]+\.\w+|(?:发送|发到|转发|上传|寄送|送信|転送)(?:到|至|给|先に)?\s?[\w.+-]+@[\w-]+\.\w+";
const MULTILINGUAL_CONCEAL: &str = r"(?i)\b(?:sag|sage|sagen sie|erzahl|erwahne|verrate)\w* (?:dem|den) (?:benutzer|nutzer|anwender|kunden) (?:nichts|nicht)|\bne (?:dis|dites|mentionne|mentionnez|revele|revelez) (?:rien|pas|jamais)\w* (?:\w+ ){0,3}(?:a l'utilisateur|aux utilisateurs|au client)|\bno (?:le )?(?:digas|diga|menciones|mencione|informes|cuentes) (?:nada )?(?:al|a los) (?:usuario|usuarios|cliente)|\bnon (?:dire|dirlo|menzionare|rivelare) (?:nulla |niente )?(?:all'utente|agli utenti)|не (?:говори|сообщай|рассказывай|упоминай)\w* (?:об этом )?(?:пользовател|клиент)\w*|(?:不要|别|不得|切勿)(?:告诉|通知|提醒|让)(?:用户|使用者|客户)|ユーザーに(?:は)?(?:言わない|知らせない|伝えない|教えない)";

fn url_pattern() -> &'static Regex {
    static URL: OnceLock<Regex> = OnceLock::new();
    URL.get_or_init(|| {
        Regex::new(r"(?i)(?:\b(?:https?|hxxps?|ftps?|sftp|wss?|file|gopher|ldap|smb|dict|ssh|scp|rtmp|ipfs)(?:://|\[:\]//|:\\/\\/)|(?:^|[\s(\['\x22<=])//|\bmailto:[^\s@?]*@)(?:[^\s/?#@]*@)?([^\s/?#:'`<>()\]\[\x22\\]*)")
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

fn defanged() -> &'static Regex {
    static DEFANGED: OnceLock<Regex> = OnceLock::new();
    DEFANGED.get_or_init(|| {
        Regex::new(r"(?i)\b[\w-]+(?:\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\))[\w-]+")
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

pub(super) fn excerpt(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 60 {
        format!("{}…", flat.chars().take(60).collect::<String>())
    } else {
        flat
    }
}

fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    !host.is_empty()
        && allowed.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            host == a || host.ends_with(&format!(".{a}"))
        })
}

/// The first match of any rule in `view`, skipping rules `skip` says are
/// out of place here, and an exfiltration match whose destination is a
/// listed host.
fn first_matches<'v>(
    view: &'v View,
    cx: &Context<'_>,
    rules: &'static [(&'static Rule, Vec<Pattern>)],
) -> impl Iterator<Item = (&'static Rule, std::ops::Range<usize>)> + 'v {
    let directives = !cx.kind.addresses_model();
    let hosts: Vec<String> = cx.url_hosts.to_vec();
    rules
        .iter()
        .filter(move |(rule, _)| directives || *rule != DIRECTIVE)
        .filter_map(move |(rule, patterns)| {
            // `send … to docs.example.com`: a listed host, and the search
            // goes on after it.
            let listed = |r: std::ops::Range<usize>| {
                let text = &view.text[r];
                let tail = text
                    .rsplit([' ', '@', '/'])
                    .find(|t| !t.is_empty())
                    .unwrap_or("");
                *rule == EXFILTRATION
                    && tail.contains('.')
                    && host_allowed(tail.trim_matches(|c: char| !c.is_alphanumeric()), &hosts)
            };
            patterns
                .iter()
                .filter_map(|p| p.find_accepted(&view.text, &|r| !listed(r)))
                .min_by_key(|r| r.start)
                .map(|r| (*rule, r))
        })
}

/// The phrase rules over every view of a string.
pub(super) fn scan(views: &Views, cx: &Context<'_>, found: &mut Found) {
    let lower = &views.lower;
    for (rule, range) in first_matches(lower, cx, phrase_rules()) {
        // A match that starts on a line break belongs to the next line.
        let text = &lower.text[range.clone()];
        let start = range.start + text.len() - text.trim_start().len();
        found.add(rule, lower.origin(start), format!("`{}`", excerpt(text)));
    }
    if cx.kind.is_identifier() {
        for (rule, range) in first_matches(lower, cx, name_rules()) {
            found.add(
                rule,
                lower.origin(range.start),
                format!("`{}`", excerpt(&lower.text[range])),
            );
        }
    }
    json_break_out(&views.clean, found);
    let decoded = [
        (views.leet(), leet_rules(), "written in leetspeak"),
        (
            views.spaced(),
            phrase_rules(),
            "with its letters spaced out",
        ),
    ];
    for (view, rules, how) in decoded {
        let Some(view) = view else { continue };
        for (rule, range) in first_matches(&view, cx, rules) {
            if !found.has(rule) {
                let text = view.text[range.clone()].replace('ı', "i");
                found.add(
                    rule,
                    view.origin_of(range.clone()),
                    format!("`{}` ({how})", excerpt(&text)),
                );
            }
        }
        if let Some(view) = Some(&view).filter(|_| !found.has(EXFILTRATION)) {
            links(view, cx, found);
        }
    }
    for (rule, re) in compact_rules() {
        if let Some(m) = re
            .find_iter(&views.compact.text)
            .find(|m| spaced_out(views, m.range()))
        {
            found.add(
                rule,
                views.compact.origin(m.start()),
                format!("`{}` with its letters spaced out", m.as_str()),
            );
        }
    }
    for (rule, re) in clean_rules() {
        if let Some(m) = re.find(&views.clean.text) {
            found.add(
                rule,
                views.clean.origin(m.start()),
                format!("`{}`", excerpt(m.as_str())),
            );
        }
    }
    links(&views.clean, cx, found);
    // A column or field may share a word with a tool (`orders`); only
    // prose that names another tool steers it.
    if !cx.kind.is_identifier() {
        tool_names(lower, cx, found);
    }
}

/// A closing brace or bracket that no earlier one opened, right after a
/// quote (`…"}]}, {"role": …`): the string tries to end the JSON it is
/// embedded in.
fn json_break_out(clean: &View, found: &mut Found) {
    let mut depth = 0i32;
    let mut last: Option<(usize, char)> = None;
    for (at, c) in clean.text.char_indices() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => {
                if depth == 0
                    && let Some((quote_at, '"' | '\'')) = last
                {
                    found.add(
                        CONTEXT_ESCAPE,
                        clean.origin(quote_at),
                        format!(
                            "`{}` closes JSON it did not open",
                            excerpt(&clean.text[quote_at..(at + 1).min(clean.text.len())])
                        ),
                    );
                    return;
                }
                depth = (depth - 1).max(0);
            }
            _ => {}
        }
        if !c.is_whitespace() {
            last = Some((at, c));
        }
    }
}

/// Whether a compact-view match was written with its letters apart
/// (`i g n o r e`), rather than as words the other views read already.
fn spaced_out(views: &Views, range: std::ops::Range<usize>) -> bool {
    let compact = &views.compact;
    let (start, end) = (
        compact.origin(range.start),
        compact.origin(range.end.saturating_sub(1)),
    );
    let lower = &views.lower;
    let written: String = lower
        .text
        .char_indices()
        .filter(|(at, _)| (start..=end).contains(&lower.origin(*at)))
        .map(|(_, c)| c)
        .collect();
    let runs: Vec<&str> = written
        .split(|c: char| !c.is_alphanumeric())
        .filter(|r| !r.is_empty())
        .collect();
    let single = runs.iter().filter(|r| r.chars().count() == 1).count();
    !runs.is_empty() && single * 2 >= runs.len()
}

/// Decoded text (ROT13, reversed) that reads as a phrase rule about
/// words (the rules about markup and tokens read the characters as
/// written).
pub(super) fn reads_as_phrase(
    view: &View,
    cx: &Context<'_>,
) -> Option<(&'static Rule, usize, String)> {
    first_matches(view, cx, phrase_rules())
        .filter(|(rule, r)| {
            let words = view.text[r.clone()]
                .split(|c: char| !c.is_ascii_alphabetic())
                .any(|w| w.len() >= 3);
            words && ![CONTEXT_ESCAPE, MARKUP].contains(rule)
        })
        .min_by_key(|(_, r)| view.origin_of(r.clone()))
        .map(|(rule, r)| (rule, view.origin_of(r.clone()), excerpt(&view.text[r])))
}

/// Links whose host `hygiene.url-hosts` does not list, and defanged
/// host names (`evil[.]com`), which only hide a host from a reviewer.
fn links(clean: &View, cx: &Context<'_>, found: &mut Found) {
    for caps in url_pattern().captures_iter(&clean.text) {
        let host = caps.get(1).map(|h| h.as_str()).unwrap_or("");
        // `file:///…` and `s3://bucket` paths name no host to contact.
        if !host.is_empty() && !host_allowed(host, cx.url_hosts) {
            let whole = caps
                .get(0)
                .map(|m| {
                    (
                        m.start() + m.as_str().len() - m.as_str().trim_start().len(),
                        m.as_str(),
                    )
                })
                .unwrap_or((0, ""));
            found.add(
                EXFILTRATION,
                clean.origin(whole.0),
                format!(
                    "a link to `{}`, which `hygiene.url-hosts` does not list",
                    excerpt(host)
                ),
            );
            return;
        }
    }
    if let Some(m) = defanged().find(&clean.text) {
        found.add(
            EXFILTRATION,
            clean.origin(m.start()),
            format!("`{}`: a host name written to hide it", excerpt(m.as_str())),
        );
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Other tools of the project named in this string. A name with a
/// separator, a digit or an inner capital is distinctive wherever it
/// appears; a plain word counts only when quoted in backticks or next to
/// the word "tool".
fn tool_names(lower: &View, cx: &Context<'_>, found: &mut Found) {
    let text = &lower.text;
    for name in cx.tool_names {
        if Some(name.as_str()) == cx.own_tool || name.is_empty() {
            continue;
        }
        let distinctive = name
            .chars()
            .any(|c| matches!(c, '_' | '-' | '.') || c.is_ascii_digit())
            || name.chars().skip(1).any(|c| c.is_ascii_uppercase());
        let needle = name.to_ascii_lowercase();
        for (at, _) in text.match_indices(&needle) {
            let before = text[..at].chars().next_back();
            let rest = &text[at + needle.len()..];
            let mut after = rest.chars();
            let next = after.next();
            // A sentence's full stop after the name is not part of it.
            let next_is_name = match next {
                Some('.') => after.next().is_some_and(name_char),
                Some(c) => name_char(c),
                None => false,
            };
            if before.is_some_and(name_char) || next_is_name {
                continue;
            }
            let quoted = before == Some('`') && next == Some('`');
            let beside_tool =
                text[..at].trim_end().ends_with("tool") || rest.trim_start().starts_with("tool");
            if distinctive || quoted || beside_tool {
                found.add(TOOL_REFERENCE, lower.origin(at), format!("tool `{name}`"));
                return;
            }
        }
    }
}
