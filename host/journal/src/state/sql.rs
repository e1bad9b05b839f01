//! Task states as SQL: the only place where the text of a statement
//! names a task state.
//!
//! Elsewhere a single state is bound as a parameter, from its `as_str`.
//! A statement that moves many tasks at once takes its `SET` and `WHERE`
//! clauses from a [`Transition`], which can only be built from pairs that
//! [`TaskState::allows`]: an illegal transition cannot be written to the
//! journal, whatever the statement.

use super::{TaskState, TaskStateKind};

/// A change of state for many tasks at once: every task in one of `from`
/// becomes `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transition {
    from: Vec<TaskStateKind>,
    to: TaskStateKind,
}

impl Transition {
    /// Every task that may go to `to` goes.
    pub(crate) fn any_to(to: TaskStateKind) -> Transition {
        Transition {
            from: TaskStateKind::ALL
                .into_iter()
                .filter(|&from| TaskState::allows(from, to))
                .collect(),
            to,
        }
    }

    /// Tasks in `from` go to `to`, if each of those states may; else the
    /// first that may not.
    pub(crate) fn new(
        from: &[TaskStateKind],
        to: TaskStateKind,
    ) -> Result<Transition, TaskStateKind> {
        match from.iter().find(|&&from| !TaskState::allows(from, to)) {
            Some(&illegal) => Err(illegal),
            None => Ok(Transition {
                from: from.to_vec(),
                to,
            }),
        }
    }

    /// The assignment, for `SET`: `state = 'queued'`.
    pub(crate) fn set(&self) -> String {
        format!("state = {}", literal(self.to))
    }

    /// The condition, for `WHERE`: `state IN ('failed', 'cancelled')`.
    pub(crate) fn filter(&self) -> String {
        let names: Vec<String> = self.from.iter().map(|&from| literal(from)).collect();
        format!("state IN ({})", names.join(", "))
    }
}

/// A state's name as a SQL string literal. Names are lowercase ASCII
/// letters: nothing to escape.
fn literal(kind: TaskStateKind) -> String {
    format!("'{}'", kind.as_str())
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    /// A table holding one task in each state, numbered by its place in
    /// [`TaskStateKind::ALL`].
    fn one_task_per_state() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute("CREATE TABLE tasks (idx INTEGER, state TEXT)", [])
            .unwrap();
        for (index, kind) in TaskStateKind::ALL.into_iter().enumerate() {
            conn.execute(
                "INSERT INTO tasks VALUES (?1, ?2)",
                rusqlite::params![index, kind.as_str()],
            )
            .unwrap();
        }
        conn
    }

    fn states(conn: &Connection) -> Vec<TaskStateKind> {
        let mut stmt = conn
            .prepare("SELECT state FROM tasks ORDER BY idx")
            .unwrap();
        stmt.query_map([], |row| row.get::<_, String>(0))
            .unwrap()
            .map(|state| state.unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn a_bulk_transition_moves_exactly_the_states_allowed_to_go() {
        for to in TaskStateKind::ALL {
            let conn = one_task_per_state();
            let transition = Transition::any_to(to);
            let sql = format!(
                "UPDATE tasks SET {} WHERE {}",
                transition.set(),
                transition.filter()
            );
            let moved = conn.execute(&sql, []).unwrap();
            let expected: Vec<TaskStateKind> = TaskStateKind::ALL
                .into_iter()
                .map(|from| match TaskState::allows(from, to) {
                    true => to,
                    false => from,
                })
                .collect();
            assert_eq!(states(&conn), expected, "{sql}");
            let allowed = TaskStateKind::ALL
                .into_iter()
                .filter(|&from| TaskState::allows(from, to))
                .count();
            assert_eq!(moved, allowed, "{sql}");
        }
    }

    #[test]
    fn a_transition_from_given_states_is_built_only_for_allowed_pairs() {
        for from in TaskStateKind::ALL {
            for to in TaskStateKind::ALL {
                let built = Transition::new(&[from], to);
                match TaskState::allows(from, to) {
                    true => {
                        let transition = built.unwrap();
                        assert_eq!(transition.filter(), format!("state IN ('{from}')"));
                        assert_eq!(transition.set(), format!("state = '{to}'"));
                    }
                    false => assert_eq!(built, Err(from), "{from} -> {to}"),
                }
            }
        }
    }

    #[test]
    fn the_first_illegal_state_is_named() {
        use TaskStateKind::*;
        assert_eq!(Transition::new(&[Failed, Done, Running], Queued), Err(Done));
        assert_eq!(
            Transition::new(&[Failed, Cancelled], Queued).map(|t| t.filter()),
            Ok("state IN ('failed', 'cancelled')".to_owned())
        );
        assert_eq!(
            Transition::any_to(Cancelled).filter(),
            "state IN ('queued', 'running', 'suspended')"
        );
    }
}
