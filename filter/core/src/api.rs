//! The OpenAI APIs the router serves: their config names, client paths and body kinds.

use serde::Deserialize;

/// One OpenAI API, as named in `airouter.toml` (`apis = ["chat", "embeddings"]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Api {
    #[serde(rename = "chat")]
    Chat,
    #[serde(rename = "completions")]
    Completions,
    #[serde(rename = "embeddings")]
    Embeddings,
    #[serde(rename = "audio.speech")]
    AudioSpeech,
    #[serde(rename = "audio.transcriptions")]
    AudioTranscriptions,
    #[serde(rename = "audio.translations")]
    AudioTranslations,
    #[serde(rename = "images.generations")]
    ImagesGenerations,
    #[serde(rename = "responses")]
    Responses,
    #[serde(rename = "moderations")]
    Moderations,
}

/// How the client sends the request body, and so how its `model` is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Multipart,
}

impl Api {
    pub const ALL: [Api; 9] = [
        Api::Chat,
        Api::Completions,
        Api::Embeddings,
        Api::AudioSpeech,
        Api::AudioTranscriptions,
        Api::AudioTranslations,
        Api::ImagesGenerations,
        Api::Responses,
        Api::Moderations,
    ];

    /// The path below the OpenAI base URL (`/v1`), which is also the path below a backend's prefix.
    pub fn path_suffix(self) -> &'static str {
        match self {
            Api::Chat => "/chat/completions",
            Api::Completions => "/completions",
            Api::Embeddings => "/embeddings",
            Api::AudioSpeech => "/audio/speech",
            Api::AudioTranscriptions => "/audio/transcriptions",
            Api::AudioTranslations => "/audio/translations",
            Api::ImagesGenerations => "/images/generations",
            Api::Responses => "/responses",
            Api::Moderations => "/moderations",
        }
    }

    /// The API served at a client path (without query string), if any.
    pub fn from_client_path(path: &str) -> Option<Api> {
        let suffix = path.strip_prefix("/v1")?;
        Api::ALL.into_iter().find(|api| api.path_suffix() == suffix)
    }

    pub fn config_name(self) -> &'static str {
        match self {
            Api::Chat => "chat",
            Api::Completions => "completions",
            Api::Embeddings => "embeddings",
            Api::AudioSpeech => "audio.speech",
            Api::AudioTranscriptions => "audio.transcriptions",
            Api::AudioTranslations => "audio.translations",
            Api::ImagesGenerations => "images.generations",
            Api::Responses => "responses",
            Api::Moderations => "moderations",
        }
    }

    pub fn body_kind(self) -> BodyKind {
        match self {
            Api::AudioTranscriptions | Api::AudioTranslations => BodyKind::Multipart,
            _ => BodyKind::Json,
        }
    }

    /// A small dense index, for per-API tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A set of APIs, as a bit set over [`Api::index`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiSet(u16);

impl ApiSet {
    pub fn insert(&mut self, api: Api) {
        self.0 |= 1 << api.index();
    }
    pub fn contains(self, api: Api) -> bool {
        self.0 & (1 << api.index()) != 0
    }
    pub fn intersects(self, other: ApiSet) -> bool {
        self.0 & other.0 != 0
    }
    pub fn iter(self) -> impl Iterator<Item = Api> {
        Api::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

impl FromIterator<Api> for ApiSet {
    fn from_iter<T: IntoIterator<Item = Api>>(iter: T) -> Self {
        let mut set = ApiSet::default();
        for api in iter {
            set.insert(api);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_round_trips_through_its_client_path() {
        for api in Api::ALL {
            let path = format!("/v1{}", api.path_suffix());
            assert_eq!(Api::from_client_path(&path), Some(api));
        }
        assert_eq!(Api::from_client_path("/v1/chat"), None);
        assert_eq!(Api::from_client_path("/chat/completions"), None);
    }

    #[test]
    fn api_set_holds_what_was_inserted() {
        let set: ApiSet = [Api::Chat, Api::Embeddings].into_iter().collect();
        assert!(set.contains(Api::Chat) && set.contains(Api::Embeddings));
        assert!(!set.contains(Api::Completions));
        assert_eq!(set.iter().count(), 2);
    }
}
