//! What the router needs to know of a KServe model, read from Triton's `ModelConfig`: whether it
//! is decoupled (streams), its batch dimension, its inputs and outputs.

use std::collections::HashMap;

use super::pb::{DataType, ModelConfig};

/// What the router needs to know of a model, from its `ModelConfig`.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub decoupled: bool,
    /// 0: no batch dimension.
    pub max_batch_size: i32,
    /// Declared inputs: name -> (type, optional).
    pub inputs: HashMap<String, (DataType, bool)>,
    pub outputs: Vec<String>,
}

impl ModelInfo {
    /// What `config` (Triton's `ModelConfig`) says of the model's transaction policy, batching,
    /// inputs and outputs.
    pub fn from_config(config: &ModelConfig) -> Self {
        ModelInfo {
            decoupled: config.model_transaction_policy.is_some_and(|p| p.decoupled),
            max_batch_size: config.max_batch_size,
            inputs: config
                .input
                .iter()
                .map(|i| {
                    (
                        i.name.clone(),
                        (
                            DataType::try_from(i.data_type).unwrap_or(DataType::TypeInvalid),
                            i.optional,
                        ),
                    )
                })
                .collect(),
            outputs: config.output.iter().map(|o| o.name.clone()).collect(),
        }
    }

    pub fn has_input(&self, name: &str) -> bool {
        self.inputs.contains_key(name)
    }
    pub fn input_type(&self, name: &str) -> Option<DataType> {
        self.inputs.get(name).map(|(t, _)| *t)
    }
    pub fn has_output(&self, name: &str) -> bool {
        self.outputs.iter().any(|o| o == name)
    }
    /// The shape of a one-element input: `[1]`, or `[1, 1]` with a batch dimension.
    pub fn scalar_shape(&self) -> Vec<i64> {
        if self.max_batch_size > 0 {
            vec![1, 1]
        } else {
            vec![1]
        }
    }
}
