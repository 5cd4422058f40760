//! `GET /openapi.json`, generated at build time (OpenAPI 3.1) from the
//! model: one operation per endpoint with per-field schemas.

use serde_json::{Map, Value, json};

use crate::resolve::model::{Access, Endpoint, Field, FieldIn, FieldType, Project};

pub fn field_schema(field: &Field) -> Value {
    let mut schema = match &field.ty {
        FieldType::Int { min, max } => {
            let mut s = json!({"type": "integer", "format": "int64"});
            if let Some(m) = min {
                s["minimum"] = json!(m)
            }
            if let Some(m) = max {
                s["maximum"] = json!(m)
            }
            s
        }
        FieldType::Double { min, max } => {
            let mut s = json!({"type": "number", "format": "double"});
            if let Some(m) = min {
                s["minimum"] = json!(m)
            }
            if let Some(m) = max {
                s["maximum"] = json!(m)
            }
            s
        }
        FieldType::Bool => json!({"type": "boolean"}),
        FieldType::String {
            pattern,
            min_length,
            max_length,
        } => {
            let mut s = json!({"type": "string"});
            if let Some(p) = pattern {
                s["pattern"] = json!(format!("^(?:{p})$"))
            }
            if let Some(m) = min_length {
                s["minLength"] = json!(m)
            }
            if let Some(m) = max_length {
                s["maxLength"] = json!(m)
            }
            s
        }
        FieldType::Enum { values } => json!({"type": "string", "enum": values}),
        FieldType::Date { .. } => json!({"type": "string", "format": "date"}),
        FieldType::Time { .. } => json!({"type": "string", "format": "time"}),
        FieldType::Timestamp { .. } => json!({"type": "string", "format": "date-time"}),
        FieldType::Uuid => json!({"type": "string", "format": "uuid"}),
        FieldType::Email => json!({"type": "string", "format": "email"}),
    };
    if let Some(default) = &field.default {
        schema["default"] = match &field.ty {
            FieldType::Int { .. } => default
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or(json!(default)),
            FieldType::Double { .. } => default
                .parse::<f64>()
                .map(Value::from)
                .unwrap_or(json!(default)),
            FieldType::Bool => json!(matches!(default.as_str(), "true" | "1")),
            _ => json!(default),
        };
    }
    schema
}

fn operation(endpoint: &Endpoint, project: &Project) -> Value {
    let mut parameters: Vec<Value> = endpoint
        .fields
        .iter()
        .filter(|f| f.field_in != FieldIn::Body)
        .map(|f| {
            let mut p = json!({
                "name": f.name,
                "in": f.field_in.as_str(),
                "required": f.required || f.field_in == FieldIn::Path,
                "schema": field_schema(f),
            });
            if let Some(d) = &f.description {
                p["description"] = json!(d)
            }
            p
        })
        .collect();
    if endpoint.paginate {
        parameters.push(json!({"name": "limit", "in": "query", "required": false,
            "schema": {"type": "integer", "minimum": 0, "maximum": project.max_limit, "default": project.default_limit}}));
        parameters.push(json!({"name": "offset", "in": "query", "required": false,
            "schema": {"type": "integer", "minimum": 0, "default": 0}}));
    }
    parameters.push(json!({"name": "format", "in": "query", "required": false,
        "schema": {"type": "string", "enum": ["json", "csv"]}}));
    let rows = json!({"type": "array", "items": {"type": "object"}});
    let body = if endpoint.paginate {
        json!({"type": "object", "properties": {"data": rows, "next": {"type": ["string", "null"]}, "total_count": {"type": "integer"}}, "required": ["data", "total_count"]})
    } else {
        rows
    };
    let errors = json!({"type": "object", "properties": {"errors": {"type": "array", "items": {
        "type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}});
    let mut op = json!({
        "operationId": endpoint.id,
        "parameters": parameters,
        "responses": {
            "200": {"description": "rows", "content": {
                "application/json": {"schema": body},
                "text/csv": {"schema": {"type": "string"}}}},
            "400": {"description": "invalid request fields", "content": {"application/json": {"schema": errors}}},
            "504": {"description": "the query ran past its deadline"}
        }
    });
    if let Some(d) = &endpoint.description {
        op["description"] = json!(d)
    }
    if let Access::Roles(_) = endpoint.rest_access {
        // Any configured scheme. Which roles pass is not published, as the
        // server's 403 does not say it either.
        op["security"] = json!(
            security_schemes(project)
                .iter()
                .map(|(name, _)| json!({ *name: [] }))
                .collect::<Vec<_>>()
        );
        op["responses"]["401"] = json!({"description": "credentials missing or not valid"});
        op["responses"]["403"] = json!({"description": "the caller has no permitted role"});
    }
    let body_fields: Vec<&Field> = endpoint
        .fields
        .iter()
        .filter(|f| f.field_in == FieldIn::Body)
        .collect();
    if !body_fields.is_empty() {
        let mut props = Map::new();
        for f in &body_fields {
            props.insert(f.name.clone(), field_schema(f));
        }
        let required: Vec<&str> = body_fields
            .iter()
            .filter(|f| f.required)
            .map(|f| f.name.as_str())
            .collect();
        op["requestBody"] = json!({"content": {"application/json": {"schema": {
            "type": "object", "properties": props, "required": required, "additionalProperties": false}}}});
    }
    op
}

/// The security schemes the project's credentials can use.
fn security_schemes(project: &Project) -> Vec<(&'static str, Value)> {
    let mut schemes = Vec::new();
    if !project.auth.users.is_empty() {
        schemes.push(("basic", json!({"type": "http", "scheme": "basic"})));
    }
    if project.auth.jwt.is_some() {
        schemes.push((
            "bearer",
            json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}),
        ));
    }
    schemes
}

pub fn openapi(project: &Project) -> String {
    let mut paths = Map::new();
    for endpoint in &project.endpoints {
        let Some(route) = &endpoint.route else {
            continue;
        };
        let entry = paths.entry(route.clone()).or_insert_with(|| json!({}));
        entry[endpoint.method.to_ascii_lowercase()] = operation(endpoint, project);
    }
    let mut info = json!({"title": project.name, "version": project.source_hash});
    if let Some(d) = &project.description {
        info["description"] = json!(d)
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": info,
        "paths": paths,
    });
    let schemes: Map<String, Value> = security_schemes(project)
        .into_iter()
        .map(|(name, scheme)| (name.to_string(), scheme))
        .collect();
    if !schemes.is_empty() {
        doc["components"] = json!({ "securitySchemes": schemes });
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
