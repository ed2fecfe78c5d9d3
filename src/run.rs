//! `Run`: the safe Rust API behind every C handle.

use std::time::Duration;

use crate::error::{Error, Status};
use crate::record::{AlertDef, AlertRule, Category, FolderSpec, MetaValue, RunStatus, parse_json_object, parse_tags};

/// Arguments of `simtrack_init`, in its order.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    pub name: Option<String>,
    pub metadata_json: Option<String>,
    pub tags: Option<String>,
    pub description: Option<String>,
    pub folder: Option<String>,
}

/// A validated alert definition.
pub type AlertSpec = AlertDef;

impl AlertDef {
    pub fn new(name: &str, rule: AlertRule, metric: &str, frequency: f64, window: f64, low: f64, high: f64) -> Result<Self, Error> {
        if name.trim().is_empty() || metric.trim().is_empty() {
            return Err(Error::new(Status::InvalidArgument, "alert name and metric must not be empty"));
        }
        for (what, v) in [("frequency", frequency), ("window", window)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::new(Status::InvalidArgument, format!("alert {what} must be a positive number of minutes, got {v}")));
            }
        }
        if !(low.is_finite() && high.is_finite()) || low > high {
            return Err(Error::new(Status::InvalidArgument, format!("alert bounds must be finite with low <= high, got [{low}, {high}]")));
        }
        Ok(AlertDef { name: name.to_owned(), rule, metric: metric.to_owned(), frequency, window, low, high })
    }
}

/// Validated arguments of `simtrack_set_folder_details`.
pub type FolderDetails = FolderSpec;

impl FolderSpec {
    pub fn parse(folder: &str, metadata_json: Option<&str>, tags: Option<&str>, description: Option<&str>) -> Result<Self, Error> {
        Ok(FolderSpec {
            path: normalize_folder(folder)?,
            metadata: metadata_json.map(|m| parse_json_object(m, "folder metadata")).transpose()?,
            tags: tags.map(parse_tags),
            description: description.map(str::to_owned),
        })
    }
}

/// Checks a folder path and brings it to the form `/a/b`.
pub fn normalize_folder(folder: &str) -> Result<String, Error> {
    if !folder.starts_with('/') {
        return Err(Error::new(Status::InvalidArgument, format!("folder must start with '/', got {folder:?}")));
    }
    let parts: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(Error::new(Status::InvalidArgument, format!("folder must not contain '.' or '..': {folder:?}")));
    }
    Ok(format!("/{}", parts.join("/")))
}

/// A run being recorded.
#[derive(Debug)]
pub struct Run {
    id: String,
}

impl Run {
    pub fn init(_opts: InitOptions) -> Result<Run, Error> {
        Ok(Run { id: String::new() })
    }
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn log(&self, _metric: &str, _value: f64, _step: i64) -> Result<(), Error> {
        Ok(())
    }
    pub fn log_many(&self, _batch: &[(&str, f64)], _step: i64) -> Result<(), Error> {
        Ok(())
    }
    pub fn event(&self, _message: &str) -> Result<(), Error> {
        Ok(())
    }
    pub fn set_metadata(&self, _key: &str, _value: MetaValue) -> Result<(), Error> {
        Ok(())
    }
    pub fn save(&self, _path: &std::path::Path, _category: Category) -> Result<(), Error> {
        Ok(())
    }
    pub fn alert(&self, _alert: AlertSpec) -> Result<(), Error> {
        Ok(())
    }
    pub fn set_folder_details(&self, _details: FolderDetails) -> Result<(), Error> {
        Ok(())
    }
    pub fn set_status(&self, _status: RunStatus) -> Result<(), Error> {
        Ok(())
    }
    pub fn abort_requested(&self) -> bool {
        false
    }
    pub fn flush(&self, _timeout: Duration) -> Result<(), Error> {
        Ok(())
    }
    pub fn finish(self) -> Result<(), Error> {
        Ok(())
    }
}
