//! Tests of the public expression API: parse results, evaluation, and DynamoDB's messages.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::model::{AttributeValue, Item, Number};

fn n(text: &str) -> AttributeValue {
    AttributeValue::N(Number::parse(text).unwrap())
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_string())
}

fn ss(items: &[&str]) -> AttributeValue {
    AttributeValue::Ss(items.iter().map(|x| x.to_string()).collect())
}

fn ns(items: &[&str]) -> AttributeValue {
    AttributeValue::Ns(items.iter().map(|x| Number::parse(x).unwrap()).collect())
}

fn list(items: Vec<AttributeValue>) -> AttributeValue {
    AttributeValue::L(items)
}

fn map(pairs: Vec<(&str, AttributeValue)>) -> AttributeValue {
    AttributeValue::M(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn item(pairs: Vec<(&str, AttributeValue)>) -> Item {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn ctx(names: &[(&str, &str)], values: Vec<(&str, AttributeValue)>) -> ExprContext {
    let names = (!names.is_empty()).then(|| names.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    let values: Option<BTreeMap<String, AttributeValue>> =
        (!values.is_empty()).then(|| values.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
    ExprContext::new(names, values).unwrap()
}

fn cond(text: &str, values: Vec<(&str, AttributeValue)>) -> Condition {
    parse_condition(text, &mut ctx(&[], values), ConditionKind::Condition).unwrap()
}

fn cond_err(text: &str, names: &[(&str, &str)], values: Vec<(&str, AttributeValue)>) -> String {
    parse_condition(text, &mut ctx(names, values), ConditionKind::Condition).unwrap_err().0
}

fn check(text: &str, values: Vec<(&str, AttributeValue)>, target: &Item) -> bool {
    cond(text, values).evaluate(target)
}

fn path(text: &str) -> Path {
    let mut c = ExprContext::empty();
    let mut paths = parse_projection(text, &mut c).unwrap();
    paths.remove(0)
}

// ---- parsing ------------------------------------------------------------------------------

#[test]
fn parses_precedence_not_and_or() {
    let c = cond("a = :v OR b = :v AND NOT c = :v", vec![(":v", n("1"))]);
    let cmp =
        |name: &str| Condition::Compare(Operand::Path(Path::attribute(name)), Comparator::Eq, Operand::Value(n("1")));
    assert_eq!(
        c,
        Condition::Or(
            Box::new(cmp("a")),
            Box::new(Condition::And(Box::new(cmp("b")), Box::new(Condition::Not(Box::new(cmp("c"))))))
        )
    );
    let grouped = cond("(a = :v OR b = :v) AND c = :v", vec![(":v", n("1"))]);
    assert!(matches!(grouped, Condition::And(..)));
}

#[test]
fn keywords_and_paths_ignore_case_where_dynamodb_does() {
    let c = cond("a between :a and :b", vec![(":a", n("1")), (":b", n("2"))]);
    assert!(matches!(c, Condition::Between(..)));
    let c = cond("a.b[2].c in (:a, :b)", vec![(":a", n("1")), (":b", n("2"))]);
    let Condition::In(Operand::Path(p), candidates) = c else { panic!("expected IN") };
    assert_eq!(p.to_string(), "a.b[2].c");
    assert_eq!(candidates.len(), 2);
}

#[test]
fn parenthesized_operands_and_size() {
    let c = cond("(a) = :v", vec![(":v", n("1"))]);
    assert!(matches!(c, Condition::Compare(Operand::Path(_), Comparator::Eq, _)));
    let c = cond("(size(a)) > :v", vec![(":v", n("1"))]);
    assert!(matches!(c, Condition::Compare(Operand::Size(_), Comparator::Gt, _)));
    let c = cond("size(a) > :v AND (b = :v)", vec![(":v", n("1"))]);
    assert!(matches!(c, Condition::And(..)));
}

#[test]
fn placeholders_resolve() {
    let mut c = ctx(&[("#s", "status"), ("#x", "x")], vec![(":v", s("on"))]);
    let parsed = parse_condition("#s = :v AND #x.#s = :v", &mut c, ConditionKind::Filter).unwrap();
    let Condition::And(left, right) = parsed else { panic!("expected AND") };
    assert_eq!(
        *left,
        Condition::Compare(Operand::Path(Path::attribute("status")), Comparator::Eq, Operand::Value(s("on")))
    );
    let Condition::Compare(Operand::Path(p), ..) = *right else { panic!("expected comparison") };
    assert_eq!(p.to_string(), "x.status");
    assert!(c.finish().is_ok());
}

// ---- DynamoDB's error messages ---------------------------------------------------------------

#[test]
fn syntax_errors_quote_token_and_neighbours() {
    assert_eq!(
        cond_err("a < <", &[], vec![]),
        "Invalid ConditionExpression: Syntax error; token: \"<\", near: \"< <\""
    );
    assert_eq!(
        cond_err("attribute_type()", &[], vec![]),
        "Invalid ConditionExpression: Syntax error; token: \")\", near: \"()\""
    );
    assert_eq!(
        cond_err("attribute_not_exists(", &[], vec![]),
        "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"(\""
    );
    assert_eq!(
        cond_err("foo", &[], vec![]),
        "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"foo\""
    );
    assert_eq!(
        cond_err("CourseId-Index = :v", &[], vec![(":v", n("1"))]),
        "Invalid ConditionExpression: Syntax error; token: \"-\", near: \"CourseId-Index\""
    );
    assert_eq!(
        cond_err("a = :v AND __typename = :v", &[], vec![(":v", n("1"))]),
        "Invalid ConditionExpression: Syntax error; token: \"_\", near: \"AND __\""
    );
    let err = parse_projection("l[a]", &mut ExprContext::empty()).unwrap_err().0;
    assert_eq!(err, "Invalid ProjectionExpression: Syntax error; token: \"a\", near: \"[a]\"");
    let err = parse_update("SET", &mut ExprContext::empty()).unwrap_err().0;
    assert_eq!(err, "Invalid UpdateExpression: Syntax error; token: \"<EOF>\", near: \"SET\"");
}

#[test]
fn empty_and_oversized_expressions() {
    assert_eq!(cond_err("  ", &[], vec![]), "Invalid ConditionExpression: The expression can not be empty;");
    let err = parse_condition("", &mut ExprContext::empty(), ConditionKind::Filter).unwrap_err().0;
    assert_eq!(err, "Invalid FilterExpression: The expression can not be empty;");
    let long = format!("a = :v{}", " ".repeat(EXPRESSION_BYTES_MAX));
    assert_eq!(
        cond_err(&long, &[], vec![(":v", n("1"))]),
        format!(
            "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: {}",
            long.len()
        )
    );
}

#[test]
fn reserved_words_need_placeholders() {
    assert_eq!(
        cond_err("status = :v", &[], vec![(":v", n("1"))]),
        "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status"
    );
    assert_eq!(
        cond_err("a.Size = :v", &[], vec![(":v", n("1"))]),
        "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: Size"
    );
    let err = parse_update("SET ttl = :v", &mut ctx(&[], vec![(":v", n("1"))])).unwrap_err().0;
    assert_eq!(err, "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: ttl");
}

#[test]
fn undefined_placeholders() {
    assert_eq!(
        cond_err("#x = :v", &[], vec![(":v", n("1"))]),
        "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #x"
    );
    assert_eq!(
        cond_err("a = :x", &[], vec![(":v", n("1"))]),
        "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :x"
    );
}

#[test]
fn function_errors() {
    assert_eq!(cond_err("foo(a)", &[], vec![]), "Invalid ConditionExpression: Invalid function name; function: foo");
    assert_eq!(
        cond_err("attribute_exists(a, b)", &[], vec![]),
        "Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2"
    );
    assert_eq!(
        cond_err("size(a)", &[], vec![]),
        "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: size"
    );
    assert_eq!(
        cond_err("attribute_exists(a) = :v", &[], vec![(":v", n("1"))]),
        "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: attribute_exists"
    );
    assert_eq!(
        cond_err("attribute_exists(:v)", &[], vec![(":v", n("1"))]),
        "Invalid ConditionExpression: Operator or function requires a document path; operator or function: attribute_exists"
    );
    assert_eq!(
        cond_err("begins_with(a, :v)", &[], vec![(":v", n("1"))]),
        "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"
    );
    assert_eq!(
        cond_err("attribute_type(a, :v)", &[], vec![(":v", s("X"))]),
        "Invalid ConditionExpression: Invalid attribute type name found; type: X, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}"
    );
    assert_eq!(
        cond_err("contains(a, a)", &[], vec![]),
        "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: contains, first operand: [a]"
    );
    assert_eq!(
        cond_err("a.b = a.b", &[], vec![]),
        "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a, b]"
    );
    assert_eq!(
        cond_err("if_not_exists(a, :v) = :v", &[], vec![(":v", n("1"))]),
        "Invalid ConditionExpression: The function is not allowed in a condition expression; function: if_not_exists"
    );
}

#[test]
fn redundant_parentheses_and_nesting_limit() {
    assert_eq!(
        cond_err("((a = :v))", &[], vec![(":v", n("1"))]),
        "Invalid ConditionExpression: The expression has redundant parentheses;"
    );
    assert_eq!(
        cond_err("((a)) = :v", &[], vec![(":v", n("1"))]),
        "Invalid ConditionExpression: The expression has redundant parentheses;"
    );
    // Priority: redundant parentheses are named before an unknown function or a reserved word.
    assert_eq!(
        cond_err("((status = :v)) AND foo(a)", &[], vec![(":v", n("1"))]),
        "Invalid ConditionExpression: The expression has redundant parentheses;"
    );
    // Deep nesting fails cleanly instead of overflowing the stack.
    let deep = format!("{}a = :v{}", "(".repeat(2000), ")".repeat(2000));
    let err = cond_err(&deep, &[], vec![(":v", n("1"))]);
    assert!(err.starts_with("Invalid ConditionExpression: "), "{err}");
    let nots = format!("{}a = :v", "NOT ".repeat(1000));
    assert!(cond_err(&nots, &[], vec![(":v", n("1"))]).starts_with("Invalid ConditionExpression: "));
    let chain = (0..60).map(|_| "(a = :v AND ").collect::<String>() + "a = :v" + &")".repeat(60);
    assert!(parse_condition(&chain, &mut ctx(&[], vec![(":v", n("1"))]), ConditionKind::Condition).is_ok());
}

#[test]
fn between_and_in_errors() {
    assert_eq!(
        cond_err("a BETWEEN :h AND :l", &[], vec![(":h", n("5")), (":l", n("1"))]),
        "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:1}"
    );
    assert_eq!(
        cond_err("a BETWEEN :b AND :a", &[], vec![(":a", s("a")), (":b", n("1"))]),
        "Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:a}"
    );
    let values: Vec<(String, AttributeValue)> = (0..101).map(|i| (format!(":v{i}"), n(&i.to_string()))).collect();
    let text = format!("a IN ({})", values.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", "));
    let mut c = ExprContext::new(None, Some(values.into_iter().collect())).unwrap();
    let err = parse_condition(&text, &mut c, ConditionKind::Condition).unwrap_err().0;
    assert_eq!(
        err,
        "Invalid ConditionExpression: The IN operator is provided with too many operands; number of operands: 101"
    );
}

#[test]
fn unused_placeholders_across_expressions() {
    let mut c = ctx(&[("#a", "a"), ("#b", "b")], vec![(":v", n("1")), (":w", n("2"))]);
    parse_condition("#a = :v", &mut c, ConditionKind::Condition).unwrap();
    assert_eq!(
        c.finish().unwrap_err().0,
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}"
    );
    parse_update("SET #b = :w", &mut c).unwrap();
    assert!(c.finish().is_ok());
}

// ---- condition evaluation ---------------------------------------------------------------------

#[test]
fn comparisons_follow_dynamodb_types() {
    let it = item(vec![
        ("n", n("10")),
        ("s", s("abc")),
        ("b", AttributeValue::B(vec![1, 2])),
        ("f", AttributeValue::Bool(true)),
    ]);
    assert!(check("n > :v", vec![(":v", n("9.5"))], &it));
    assert!(check("n = :v", vec![(":v", n("1E1"))], &it));
    assert!(!check("n = :v", vec![(":v", s("10"))], &it));
    assert!(check("n <> :v", vec![(":v", s("10"))], &it));
    assert!(!check("n < :v", vec![(":v", s("z"))], &it));
    assert!(check("s < :v", vec![(":v", s("abd"))], &it));
    assert!(check("b >= :v", vec![(":v", AttributeValue::B(vec![1]))], &it));
    assert!(check("f = :v", vec![(":v", AttributeValue::Bool(true))], &it));
    // Missing attributes: only <> holds.
    assert!(!check("absent = :v", vec![(":v", n("1"))], &it));
    assert!(check("absent <> :v", vec![(":v", n("1"))], &it));
    assert!(!check("absent < :v", vec![(":v", n("1"))], &it));
    assert!(check("NOT absent = :v", vec![(":v", n("1"))], &it));
    assert!(check("n BETWEEN :a AND :b", vec![(":a", n("10")), (":b", n("11"))], &it));
    assert!(!check("s BETWEEN :a AND :b", vec![(":a", n("1")), (":b", n("11"))], &it));
    assert!(check("n IN (:a, :b)", vec![(":a", s("x")), (":b", n("10"))], &it));
}

#[test]
fn functions_evaluate() {
    let it = item(vec![
        ("s", s("héllo")),
        ("tags", ss(&["a", "b"])),
        ("nums", ns(&["1", "2"])),
        ("l", list(vec![s("x"), n("3")])),
        ("m", map(vec![("k", AttributeValue::Null)])),
    ]);
    assert!(check("attribute_exists(m.k)", vec![], &it));
    assert!(check("attribute_not_exists(m.z)", vec![], &it));
    assert!(check("attribute_not_exists(l[5])", vec![], &it));
    assert!(check("attribute_type(tags, :t)", vec![(":t", s("SS"))], &it));
    assert!(!check("attribute_type(tags, :t)", vec![(":t", s("L"))], &it));
    assert!(check("begins_with(s, :p)", vec![(":p", s("hé"))], &it));
    assert!(check("contains(s, :p)", vec![(":p", s("ll"))], &it));
    assert!(check("contains(tags, :p)", vec![(":p", s("b"))], &it));
    assert!(check("contains(nums, :p)", vec![(":p", n("2.0"))], &it));
    assert!(!check("contains(nums, :p)", vec![(":p", s("2"))], &it));
    assert!(check("contains(l, :p)", vec![(":p", n("3"))], &it));
    assert!(check("size(s) = :n", vec![(":n", n("5"))], &it));
    assert!(check("size(l) = :n AND size(m) = :o", vec![(":n", n("2")), (":o", n("1"))], &it));
    assert!(!check("size(absent) >= :n", vec![(":n", n("0"))], &it));
}

// ---- update expressions --------------------------------------------------------------------------

fn upd(text: &str, names: &[(&str, &str)], values: Vec<(&str, AttributeValue)>) -> UpdateExpression {
    parse_update(text, &mut ctx(names, values)).unwrap()
}

fn upd_err(text: &str, values: Vec<(&str, AttributeValue)>) -> String {
    parse_update(text, &mut ctx(&[], values)).unwrap_err().0
}

#[test]
fn update_parse_errors() {
    assert_eq!(
        upd_err("SET a = :v SET b = :v", vec![(":v", n("1"))]),
        "Invalid UpdateExpression: The \"SET\" section can only be used once in an update expression;"
    );
    assert_eq!(
        upd_err("SET a = :v REMOVE a.b", vec![(":v", n("1"))]),
        "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"
    );
    assert_eq!(
        upd_err("SET a.b = :v REMOVE a[1]", vec![(":v", n("1"))]),
        "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [1]]"
    );
    assert_eq!(
        upd_err("ADD a :v", vec![(":v", s("x"))]),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING"
    );
    assert_eq!(
        upd_err("DELETE a :v", vec![(":v", n("1"))]),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER"
    );
    assert_eq!(
        upd_err("SET a = :v + :w", vec![(":v", n("1")), (":w", s("x"))]),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand type: S"
    );
    assert_eq!(
        upd_err("SET a = list_append(:v, b)", vec![(":v", n("1"))]),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: N"
    );
    assert_eq!(
        upd_err("SET a = if_not_exists(:v, :v)", vec![(":v", n("1"))]),
        "Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists"
    );
    assert_eq!(
        upd_err("SET a = size(b)", vec![]),
        "Invalid UpdateExpression: The function is not allowed in an update expression; function: size"
    );
    assert_eq!(
        upd_err("SET a = :v + :v + :v", vec![(":v", n("1"))]),
        "Invalid UpdateExpression: Syntax error; token: \"+\", near: \":v + :v\""
    );
}

#[test]
fn update_set_arithmetic_and_functions() {
    let before = item(vec![("n", n("5")), ("l", list(vec![n("1")])), ("s", s("x"))]);
    let u = upd(
        "SET a = n + :one, b = n - :ten, c = if_not_exists(absent, :one), d = if_not_exists(s, :one), \
         l = list_append(l, :more), e = list_append(:more, l)",
        &[],
        vec![(":one", n("1")), (":ten", n("10")), (":more", list(vec![n("2")]))],
    );
    let after = u.apply(&before).unwrap();
    assert_eq!(after["a"], n("6"));
    assert_eq!(after["b"], n("-5"));
    assert_eq!(after["c"], n("1"));
    assert_eq!(after["d"], s("x"));
    assert_eq!(after["l"], list(vec![n("1"), n("2")]));
    // SET values are computed from the item before the update.
    assert_eq!(after["e"], list(vec![n("2"), n("1")]));
    let names: Vec<String> = u.paths().iter().map(Path::to_string).collect();
    assert_eq!(names, ["a", "b", "c", "d", "l", "e"]);
}

#[test]
fn update_apply_errors() {
    let before = item(vec![("s", s("x")), ("m", map(vec![]))]);
    let err = |text: &str, values: Vec<(&str, AttributeValue)>| upd(text, &[], values).apply(&before).unwrap_err().0;
    assert_eq!(
        err("SET a = absent", vec![]),
        "The provided expression refers to an attribute that does not exist in the item"
    );
    assert_eq!(
        err("SET a = s + :v", vec![(":v", n("1"))]),
        "An operand in the update expression has an incorrect data type"
    );
    assert_eq!(err("ADD s :v", vec![(":v", n("1"))]), "An operand in the update expression has an incorrect data type");
    assert_eq!(
        err("SET x.y = :v", vec![(":v", n("1"))]),
        "The document path provided in the update expression is invalid for update"
    );
    assert_eq!(
        err("SET m.a.b = :v", vec![(":v", n("1"))]),
        "The document path provided in the update expression is invalid for update"
    );
    let big = n("9.9999999999999999999999999999999999999E+125");
    assert_eq!(
        upd("SET a = :v + :v", &[], vec![(":v", big)]).apply(&Item::new()).unwrap_err().0,
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    );
}

#[test]
fn update_lists_maps_remove_add_delete() {
    let before = item(vec![
        ("l", list(vec![s("a"), s("b"), s("c"), s("d")])),
        ("m", map(vec![("x", n("1")), ("y", n("2"))])),
        ("hits", n("1")),
        ("tags", ss(&["a", "b"])),
        ("gone", ss(&["z"])),
        ("labels", ss(&["a", "b"])),
    ]);
    let u = upd(
        "REMOVE l[1], l[3], m.x ADD hits :one, new_count :one, tags :more, fresh :more \
         DELETE gone :z, labels :a SET l[10] = :e, l[0] = :z0, m.w = :one",
        &[],
        vec![
            (":one", n("1")),
            (":more", ss(&["c"])),
            (":z", ss(&["z"])),
            (":a", ss(&["a"])),
            (":e", s("e")),
            (":z0", s("A")),
        ],
    );
    let after = u.apply(&before).unwrap();
    assert_eq!(after["l"], list(vec![s("A"), s("c"), s("e")]));
    assert_eq!(after["m"], map(vec![("w", n("1")), ("y", n("2"))]));
    assert_eq!(after["hits"], n("2"));
    assert_eq!(after["new_count"], n("1"));
    assert_eq!(after["tags"], ss(&["a", "b", "c"]));
    assert_eq!(after["fresh"], ss(&["c"]));
    assert_eq!(after["labels"], ss(&["b"]));
    assert!(!after.contains_key("gone"), "deleting the last element removes the attribute");
}

// ---- projections ----------------------------------------------------------------------------------

#[test]
fn projection_parse_and_apply() {
    let mut c = ctx(&[("#s", "status")], vec![]);
    let paths = parse_projection("a.b, l[3], l[1].x, #s, absent.q", &mut c).unwrap();
    assert!(c.finish().is_ok());
    let it = item(vec![
        ("a", map(vec![("b", n("1")), ("c", n("2"))])),
        ("l", list(vec![n("0"), map(vec![("x", n("1")), ("y", n("2"))]), n("2"), n("3")])),
        ("status", s("on")),
        ("extra", s("no")),
    ]);
    let projected = project(&it, &paths);
    assert_eq!(
        projected,
        item(vec![
            ("a", map(vec![("b", n("1"))])),
            ("l", list(vec![map(vec![("x", n("1"))]), n("3")])),
            ("status", s("on")),
        ])
    );
    assert_eq!(project(&it, &[path("a.z"), path("extra[0]")]), Item::new());
    let err = parse_projection("a, a.b", &mut ExprContext::empty()).unwrap_err().0;
    assert_eq!(
        err,
        "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"
    );
}

// ---- key conditions ---------------------------------------------------------------------------------

fn key(text: &str, values: Vec<(&str, AttributeValue)>, sort: Option<&str>) -> Result<KeyCondition, String> {
    parse_key_condition(text, &mut ctx(&[], values), "pk", sort).map_err(|e| e.0)
}

#[test]
fn key_conditions_accepted() {
    let k = key("pk = :p AND sk BETWEEN :a AND :b", vec![(":p", s("x")), (":a", n("1")), (":b", n("2"))], Some("sk"))
        .unwrap();
    assert_eq!(k.partition_value, s("x"));
    assert_eq!(k.sort, Some(SortKeyCondition::Between(n("1"), n("2"))));
    let k = key("begins_with(sk, :a) AND :p = pk", vec![(":p", s("x")), (":a", s("ab"))], Some("sk")).unwrap();
    assert_eq!(k.sort, Some(SortKeyCondition::BeginsWith(s("ab"))));
    assert!(k.sort.as_ref().unwrap().matches(&s("abc")));
    let k = key(":v < sk AND pk = :p", vec![(":p", s("x")), (":v", n("3"))], Some("sk")).unwrap();
    assert_eq!(k.sort, Some(SortKeyCondition::Gt(n("3"))));
    let k = key("pk = :p", vec![(":p", s("x"))], None).unwrap();
    assert_eq!(k.sort, None);
}

#[test]
fn key_condition_errors() {
    let v = || vec![(":p", s("x")), (":a", n("5")), (":b", n("1"))];
    let e = |text: &str| key(text, v(), Some("sk")).unwrap_err();
    assert_eq!(e("sk = :a"), "Query condition missed key schema element: pk");
    assert_eq!(e("pk = :p AND extra = :a"), "Query condition missed key schema element: sk");
    assert_eq!(e("pk < :p"), "Query key condition not supported");
    assert_eq!(e("pk = :p OR sk = :a"), "Invalid operator used in KeyConditionExpression: OR");
    assert_eq!(e("pk = :p AND sk <> :a"), "Invalid operator used in KeyConditionExpression: <>");
    assert_eq!(
        e("pk = :p AND attribute_exists(sk)"),
        "Invalid operator used in KeyConditionExpression: attribute_exists"
    );
    assert_eq!(e("pk = :p AND size(sk) > :a"), "KeyConditionExpressions cannot contain nested operations");
    assert_eq!(e("pk.x = :p"), "KeyConditionExpressions cannot have conditions on nested attributes");
    assert_eq!(
        e("pk = sk"),
        "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"
    );
    assert_eq!(e(":p = :a AND pk = :p"), "Invalid condition in KeyConditionExpression: No key attribute specified");
    assert_eq!(e("pk = :p AND pk = :p"), "KeyConditionExpressions must only contain one condition per key");
    assert_eq!(e("pk = :p AND sk > :a AND sk < :b"), "Conditions can be of length 1 or 2 only");
    assert_eq!(
        e("pk = :p AND sk BETWEEN :a AND :b"),
        "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:1}"
    );
    assert_eq!(
        e("pk = :p AND begins_with(sk, :a)"),
        "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"
    );
    assert_eq!(e("pk = "), "Invalid KeyConditionExpression: Syntax error; token: \"<EOF>\", near: \"=\"");
}

// ---- properties ---------------------------------------------------------------------------------

mod properties {
    use proptest::prelude::*;

    use super::super::print::{render_condition, render_update};
    use super::*;

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![Just("a".to_string()), Just("status".to_string()), Just("b c".to_string()), "[a-z]{1,3}"]
    }

    /// Paths whose top-level name starts with `prefix`, so that generated operands never
    /// compare a path with itself.
    fn path_from(prefix: &'static str) -> impl Strategy<Value = Path> {
        (
            name(),
            prop::collection::vec(
                prop_oneof![name().prop_map(PathElement::Attribute), (0usize..20).prop_map(PathElement::Index)],
                0..3,
            ),
        )
            .prop_map(move |(top, rest)| {
                let mut elements = vec![PathElement::Attribute(format!("{prefix}{top}"))];
                elements.extend(rest);
                Path(elements)
            })
    }

    fn number() -> impl Strategy<Value = AttributeValue> {
        (-1000i64..1000).prop_map(|i| AttributeValue::N(Number::from_i64(i)))
    }

    fn scalar() -> impl Strategy<Value = AttributeValue> {
        prop_oneof![number(), ".{0,5}".prop_map(AttributeValue::S)]
    }

    fn right_operand() -> impl Strategy<Value = Operand> {
        prop_oneof![
            scalar().prop_map(Operand::Value),
            path_from("r").prop_map(Operand::Path),
            path_from("r").prop_map(|p| Operand::Size(Box::new(Operand::Path(p)))),
        ]
    }

    fn comparator() -> impl Strategy<Value = Comparator> {
        prop_oneof![
            Just(Comparator::Eq),
            Just(Comparator::Ne),
            Just(Comparator::Lt),
            Just(Comparator::Le),
            Just(Comparator::Gt),
            Just(Comparator::Ge)
        ]
    }

    fn leaf() -> impl Strategy<Value = Condition> {
        let left = || path_from("l");
        prop_oneof![
            (left(), comparator(), right_operand()).prop_map(|(p, c, r)| Condition::Compare(Operand::Path(p), c, r)),
            (left(), -100i64..100, 0i64..100).prop_map(|(p, lo, width)| Condition::Between(
                Operand::Path(p),
                Operand::Value(AttributeValue::N(Number::from_i64(lo))),
                Operand::Value(AttributeValue::N(Number::from_i64(lo + width)))
            )),
            (left(), prop::collection::vec(right_operand(), 1..5))
                .prop_map(|(p, c)| Condition::In(Operand::Path(p), c)),
            left().prop_map(Condition::AttributeExists),
            left().prop_map(Condition::AttributeNotExists),
            (left(), prop::sample::select(vec!["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"]))
                .prop_map(|(p, t)| Condition::AttributeType(p, t.to_string())),
            (left(), ".{0,4}")
                .prop_map(|(p, x)| Condition::BeginsWith(Operand::Path(p), Operand::Value(AttributeValue::S(x)))),
            (left(), right_operand()).prop_map(|(p, r)| Condition::Contains(Operand::Path(p), r)),
        ]
    }

    fn condition() -> impl Strategy<Value = Condition> {
        leaf().prop_recursive(4, 24, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Condition::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Condition::Or(Box::new(a), Box::new(b))),
                inner.prop_map(|c| Condition::Not(Box::new(c))),
            ]
        })
    }

    fn set_operand() -> impl Strategy<Value = SetOperand> {
        let leaf = prop_oneof![path_from("r").prop_map(SetOperand::Path), scalar().prop_map(SetOperand::Value),];
        leaf.prop_recursive(2, 6, 2, |inner| {
            prop_oneof![
                (path_from("r"), inner.clone()).prop_map(|(p, f)| SetOperand::IfNotExists(p, Box::new(f))),
                (path_from("r"), path_from("q")).prop_map(|(a, b)| SetOperand::ListAppend(
                    Box::new(SetOperand::Path(a)),
                    Box::new(SetOperand::Path(b))
                )),
            ]
        })
    }

    fn update() -> impl Strategy<Value = UpdateExpression> {
        let set_value = prop_oneof![
            set_operand().prop_map(SetValue::Operand),
            (path_from("r"), number()).prop_map(|(p, v)| SetValue::Plus(SetOperand::Path(p), SetOperand::Value(v))),
            (number(), path_from("r")).prop_map(|(v, p)| SetValue::Minus(SetOperand::Value(v), SetOperand::Path(p))),
        ];
        let tail = || {
            prop::collection::vec(
                prop_oneof![name().prop_map(PathElement::Attribute), (0usize..5).prop_map(PathElement::Index)],
                0..2,
            )
        };
        (
            prop::collection::vec((tail(), set_value), 0..3),
            prop::collection::vec(tail(), 0..3),
            prop::collection::vec((tail(), prop_oneof![number(), Just(ss(&["a", "b"]))]), 0..3),
            prop::collection::vec(tail(), 0..2),
        )
            .prop_filter("at least one action", |(a, b, c, d)| a.len() + b.len() + c.len() + d.len() > 0)
            .prop_map(|(sets, removes, adds, deletes)| {
                // Every target gets its own top-level name, so no two paths overlap.
                let mut counter = 0;
                let mut target = |tail: Vec<PathElement>| {
                    counter += 1;
                    let mut elements = vec![PathElement::Attribute(format!("t{counter}"))];
                    elements.extend(tail);
                    Path(elements)
                };
                UpdateExpression {
                    set: sets.into_iter().map(|(t, value)| SetAction { path: target(t), value }).collect(),
                    remove: removes.into_iter().map(&mut target).collect(),
                    add: adds.into_iter().map(|(t, v)| (target(t), v)).collect(),
                    delete: deletes.into_iter().map(|t| (target(t), ns(&["1"]))).collect(),
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn printed_condition_parses_back(condition in condition()) {
            let rendered = render_condition(&condition);
            let mut c = ExprContext::new(
                (!rendered.names.is_empty()).then(|| rendered.names.clone()),
                (!rendered.values.is_empty()).then(|| rendered.values.clone()),
            ).unwrap();
            let parsed = parse_condition(&rendered.text, &mut c, ConditionKind::Condition);
            prop_assert_eq!(parsed.as_ref(), Ok(&condition), "text: {}", rendered.text);
            prop_assert!(c.finish().is_ok());
        }

        #[test]
        fn printed_update_parses_back(update in update()) {
            let rendered = render_update(&update);
            let mut c = ExprContext::new(
                (!rendered.names.is_empty()).then(|| rendered.names.clone()),
                (!rendered.values.is_empty()).then(|| rendered.values.clone()),
            ).unwrap();
            let parsed = parse_update(&rendered.text, &mut c);
            prop_assert_eq!(parsed.as_ref(), Ok(&update), "text: {}", rendered.text);
        }

        #[test]
        fn parsers_never_panic_on_arbitrary_text(text in ".{0,200}") {
            let mut c = ctx(&[("#a", "a")], vec![(":v", n("1"))]);
            let _ = parse_condition(&text, &mut c, ConditionKind::Condition);
            let _ = parse_update(&text, &mut c);
            let _ = parse_projection(&text, &mut c);
            let _ = parse_key_condition(&text, &mut c, "pk", Some("sk"));
        }

        #[test]
        fn parsers_never_panic_on_token_soup(
            parts in prop::collection::vec(
                prop::sample::select(vec![
                    "a", "#a", ":v", "#x", ":x", "(", ")", "[", "]", "0", "7", ",", ".", "=", "<>", "<",
                    "<=", ">", ">=", "+", "-", "AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE",
                    "ADD", "DELETE", "size", "contains", "if_not_exists", "list_append",
                    "attribute_exists", "begins_with", "status", "_", " ",
                ]),
                0..60,
            )
        ) {
            let text = parts.join(" ");
            let mut c = ctx(&[("#a", "a")], vec![(":v", n("1"))]);
            let empty = Item::new();
            if let Ok(condition) = parse_condition(&text, &mut c, ConditionKind::Filter) {
                let _ = condition.evaluate(&empty);
            }
            if let Ok(update) = parse_update(&text, &mut c) {
                let _ = update.apply(&empty);
            }
            if let Ok(paths) = parse_projection(&text, &mut c) {
                let _ = project(&empty, &paths);
            }
            let _ = parse_key_condition(&text, &mut c, "a", None);
        }

        #[test]
        fn evaluation_agrees_with_negation(condition in condition(), seed in 0i64..5) {
            let target: Item = [("la".to_string(), AttributeValue::N(Number::from_i64(seed)))].into_iter().collect();
            let negated = Condition::Not(Box::new(condition.clone()));
            prop_assert_eq!(negated.evaluate(&target), !condition.evaluate(&target));
        }
    }

    #[test]
    fn set_types_are_sets() {
        let _: BTreeSet<String> = BTreeSet::new();
    }
}
