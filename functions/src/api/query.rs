//! Query-string parameters, read strictly: unknown parameters and bad values are 400 problem
//! documents naming each parameter.

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use shared::domain::field_rules::{TextRule, ID};
use shared::domain::validation::{FieldError, Invalid, Validation};
use shared::store::PageRequest;

use super::{ApiError, PageQuery};

/// The text filters of the listings and their longest value, declared once: the handlers read
/// them with [`QueryParams::text`] and the OpenAPI document describes them from here.
pub const TEXT_FILTERS: &[(&str, usize)] = &[
    ("name", 200),
    ("q", 200),
    ("category", 100),
    ("action", 100),
    ("actorId", 128),
];

/// The rule of the text filter `name` (a 200-character single line if it is not listed).
pub fn text_filter_rule(name: &str) -> TextRule {
    let max = TEXT_FILTERS
        .iter()
        .find(|(filter, _)| *filter == name)
        .map_or(200, |(_, max)| *max);
    TextRule::line(0, max)
}

/// The query string as a map, with checked accessors that collect errors.
pub struct QueryParams {
    values: BTreeMap<String, String>,
    errors: Vec<FieldError>,
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(values) = Query::<BTreeMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|error| {
                ApiError::BadRequest(format!("the query string cannot be read: {error}"))
            })?;
        Ok(Self {
            values,
            errors: Vec::new(),
        })
    }
}

impl QueryParams {
    fn error(&mut self, field: &str, message: &str) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        });
    }

    /// A text filter, checked against its rule in [`TEXT_FILTERS`] (control and invisible
    /// formatting characters refused: a NUL would otherwise cut the filter short in the store
    /// and match everything). Blank means no filter.
    pub fn text(&mut self, name: &str) -> Option<String> {
        let raw = self.values.get(name)?.clone();
        let rule = text_filter_rule(name);
        self.passes(|check| rule.check(check, name, &raw))
            .then(|| raw.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    /// An id filter, checked by the id rule the bodies use.
    pub fn id(&mut self, name: &str) -> Option<String> {
        let value = self.values.get(name)?.clone();
        self.passes(|check| ID.check(check, name, &value))
            .then_some(value)
    }

    /// Runs a field rule, keeping its errors; whether the value passed.
    fn passes(&mut self, rule: impl FnOnce(&mut Validation)) -> bool {
        let mut check = Validation::new();
        rule(&mut check);
        match check.finish() {
            Ok(()) => true,
            Err(Invalid(errors)) => {
                self.errors.extend(errors);
                false
            }
        }
    }

    pub fn time(&mut self, name: &str) -> Option<DateTime<Utc>> {
        let value = self.values.get(name)?.clone();
        match DateTime::parse_from_rfc3339(&value) {
            Ok(at) => Some(at.with_timezone(&Utc)),
            Err(_) => {
                self.error(name, "must be an RFC 3339 time, like 2026-11-21T00:00:00Z");
                None
            }
        }
    }

    /// A value parsed by `parse`, with `expected` in the error.
    pub fn parsed<T>(
        &mut self,
        name: &str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let value = self.values.get(name)?.clone();
        let parsed = parse(&value);
        if parsed.is_none() {
            self.error(name, &format!("must be one of {expected}"));
        }
        parsed
    }

    /// `limit` and `continuation`.
    pub fn page(&mut self) -> Option<PageRequest> {
        let query = PageQuery {
            limit: self.values.get("limit").cloned(),
            continuation: self.values.get("continuation").cloned(),
        };
        match query.to_request() {
            Ok(page) => Some(page),
            Err(ApiError::Invalid(Invalid(errors))) => {
                self.errors.extend(errors);
                None
            }
            Err(_) => None,
        }
    }

    /// Checks that only `known` parameters were given and that all values were valid.
    pub fn finish(mut self, known: &[&str]) -> Result<(), ApiError> {
        let unknown: Vec<String> = self
            .values
            .keys()
            .filter(|key| !known.contains(&key.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            self.error(
                &key,
                &format!("is not a parameter here; use {}", known.join(", ")),
            );
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(Invalid(self.errors)))
        }
    }
}
