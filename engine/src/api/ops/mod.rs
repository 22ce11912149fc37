//! One module per DynamoDB operation; each owns its request decoding, validation and `run`.

pub mod batch_get_item;
pub mod batch_write_item;
pub mod create_table;
pub mod delete_item;
pub mod delete_table;
pub mod describe_limits;
pub mod describe_table;
pub mod get_item;
pub mod list_tables;
pub mod list_tags_of_resource;
pub mod put_item;
pub mod query;
pub mod scan;
pub mod tag_resource;
pub mod transact_get_items;
pub mod transact_write_items;
pub mod untag_resource;
pub mod update_item;
pub mod update_table;

use crate::api::common::Request;
use crate::api::ApiError;
use crate::expr::{parse_projection, ExprContext, Path, PathElement};

/// The paths a read asks for: `ProjectionExpression`, or the legacy `AttributesToGet` list.
pub fn projection_paths(request: &Request, context: &mut ExprContext) -> Result<Option<Vec<Path>>, ApiError> {
    let expression = request.str("ProjectionExpression")?;
    let legacy = request.array("AttributesToGet")?;
    match (expression, legacy) {
        (Some(_), Some(_)) => Err(ApiError::validation(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}",
        )),
        (Some(text), None) => Ok(Some(parse_projection(text, context)?)),
        (None, Some(names)) => {
            let mut paths = Vec::new();
            for name in names {
                let name = name
                    .as_str()
                    .ok_or_else(|| ApiError::Serialization("AttributesToGet must be a list of strings".into()))?;
                paths.push(Path(vec![PathElement::Attribute(name.to_string())]));
            }
            Ok(Some(paths))
        }
        (None, None) => Ok(None),
    }
}
