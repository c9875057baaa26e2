//! The WHERE clause of a listing, built from the filters actually given.
//!
//! One fixed statement with `($1 IS NULL OR column = $1)` for each optional filter reads the
//! same, but it hides every such column's index from SQLite's planner: the open conversations
//! of one caller (the screen pop's lookup) were found by scanning every conversation, 47 ms at
//! a million interactions. Here a filter that is not given is not in the statement, and one
//! that is given is a plain condition the planner can match to an index.

use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

use super::db::Arg;

/// Conditions joined by `AND`, with their parameters numbered `$1`, `$2`, ... in order.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    clauses: Vec<String>,
    args: Vec<Arg>,
}

impl Conditions {
    /// `column = value`, when there is a value.
    pub fn equal<A: Into<Arg>>(&mut self, column: &str, value: Option<A>) -> &mut Self {
        self.with(&format!("{column} = {{}}"), value)
    }

    /// `clause` with its one parameter where `{}` stands, when there is a value.
    pub fn with<A: Into<Arg>>(&mut self, clause: &str, value: Option<A>) -> &mut Self {
        if let Some(value) = value {
            let placeholder = self.param(value);
            self.clauses.push(clause.replacen("{}", &placeholder, 1));
        }
        self
    }

    /// A condition without parameters, when `on`.
    pub fn when(&mut self, on: bool, clause: &str) -> &mut Self {
        if on {
            self.clauses.push(clause.to_owned());
        }
        self
    }

    /// A parameter the statement uses outside the conditions (a `LIMIT`): its placeholder.
    pub fn param(&mut self, value: impl Into<Arg>) -> String {
        self.args.push(value.into());
        format!("${}", self.args.len())
    }

    /// The number the next parameter after these takes.
    pub fn next_param(&self) -> usize {
        self.args.len() + 1
    }

    /// The conditions joined by `AND`; `1 = 1` when there are none.
    pub fn sql(&self) -> String {
        if self.clauses.is_empty() {
            "1 = 1".into()
        } else {
            self.clauses.join(" AND ")
        }
    }

    /// Binds the parameters, in order, to a query of the statement built with them.
    pub fn bind(self, mut query: Query<'static, Any, AnyArguments>) -> Query<'static, Any, AnyArguments> {
        for arg in self.args {
            query = arg.bind_to(query);
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_filters_given_become_conditions_numbered_in_order() {
        let mut c = Conditions::default();
        c.equal("status", Some("open"))
            .equal("assignee_id", None::<String>)
            .when(false, "assignee_id IS NULL")
            .when(true, "x IS NOT NULL")
            .with("EXISTS (SELECT 1 FROM l WHERE l.label = {})", Some("vip"));
        let limit = c.param(20);
        assert_eq!(
            c.sql(),
            "status = $1 AND x IS NOT NULL AND EXISTS (SELECT 1 FROM l WHERE l.label = $2)"
        );
        assert_eq!(limit, "$3");
        assert_eq!(c.next_param(), 4);
        assert_eq!(Conditions::default().sql(), "1 = 1");
    }
}
