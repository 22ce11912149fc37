//! The social feed and leaderboards: posts under each user (partition key `user`, sort key
//! `post`), and scores per board and player with a global index by score. Users and players are
//! chosen zipfian, so a few keys are very hot; the few boards are hotter still.
//!
//! Operations: post (PutItem), read_feed (Query a user's newest posts), add_score (UpdateItem
//! `ADD score :d`), top_scores (Query the index by board, highest scores first).
//!
//! Invariant: every acknowledged post is stored and nothing else; each score lies between the sum
//! of its acknowledged increments and that sum plus its unacknowledged ones; the score index
//! holds exactly the table's (board, player, score); every feed read came back newest first and
//! every top-scores read highest first.

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{payload, CheckReport, KeyChooser, KeyDistribution, Mix};
use crate::api::{failure_outcome, DynamoApi};
use crate::driver::DriverError;
use crate::keygen::{seeded_rng, uniform_below};
use crate::op::{get_n, get_s, n, s, scan_all, Ack, IndexDef, KeyAttribute, Op, TableDef};
use crate::recorder::Outcome;

/// The score index.
pub const SCORE_INDEX: &str = "by_score";

/// Settings of the feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedConfig {
    /// Posts table.
    pub posts_table: String,
    /// Scores table.
    pub scores_table: String,
    /// Users who post.
    pub users: u64,
    /// Players per board.
    pub players: u64,
    /// Boards.
    pub boards: u64,
    /// Bytes of post text.
    pub post_bytes: usize,
    /// Posts per feed page and entries per top-scores page.
    pub page_size: u64,
    /// Largest score increment.
    pub increment_max: u64,
    /// Which users and players are chosen.
    pub distribution: KeyDistribution,
    /// Weight of posting.
    pub post: f64,
    /// Weight of reading a feed.
    pub read_feed: f64,
    /// Weight of adding to a score.
    pub add_score: f64,
    /// Weight of reading the top scores.
    pub top_scores: f64,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            posts_table: "posts".into(),
            scores_table: "scores".into(),
            users: 1_000,
            players: 1_000,
            boards: 3,
            post_bytes: 140,
            page_size: 20,
            increment_max: 10,
            distribution: KeyDistribution::Zipfian,
            post: 0.2,
            read_feed: 0.4,
            add_score: 0.25,
            top_scores: 0.15,
        }
    }
}

impl FeedConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.users == 0 || self.players == 0 || self.boards == 0 {
            return Err("users, players and boards must be at least 1".into());
        }
        if self.page_size == 0 || self.increment_max == 0 {
            return Err("page_size and increment_max must be at least 1".into());
        }
        if self.post_bytes > 64 * 1024 {
            return Err("post_bytes must be at most 65536".into());
        }
        self.distribution.validate()?;
        self.mix().map(|_| ())
    }

    fn mix(&self) -> Result<Mix<Kind>, String> {
        Mix::new(&[
            (Kind::Post, self.post),
            (Kind::ReadFeed, self.read_feed),
            (Kind::AddScore, self.add_score),
            (Kind::TopScores, self.top_scores),
        ])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Post,
    ReadFeed,
    AddScore,
    TopScores,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Acknowledged,
    Uncertain,
}

#[derive(Debug, Clone, Copy, Default)]
struct Score {
    acknowledged: i64,
    uncertain: i64,
    /// Whether its load failed (the item may not exist unless an increment created it).
    load_failed: bool,
}

/// The feed and leaderboards.
#[derive(Debug, Clone)]
pub struct Feed {
    name: String,
    config: FeedConfig,
    mix: Mix<Kind>,
    users: KeyChooser,
    players: KeyChooser,
    boards: KeyChooser,
    rng: ChaCha8Rng,
    load_next: u64,
    /// Post id → (user, state).
    posts: Vec<(u64, State)>,
    /// (board, player) → score sums.
    scores: BTreeMap<(u64, u64), Score>,
    order_violations: Vec<String>,
}

const STREAM: u64 = 23;

impl Feed {
    /// The feed with `config`, seeded.
    pub fn new(name: &str, config: FeedConfig, seed: u64) -> Result<Self, String> {
        config.validate()?;
        Ok(Feed {
            name: name.to_owned(),
            mix: config.mix()?,
            users: KeyChooser::new(config.distribution, config.users),
            players: KeyChooser::new(config.distribution, config.players),
            boards: KeyChooser::new(KeyDistribution::Zipfian, config.boards),
            rng: seeded_rng(seed, STREAM),
            load_next: 0,
            posts: Vec::new(),
            scores: BTreeMap::new(),
            order_violations: Vec::new(),
            config,
        })
    }

    /// Scenario name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The posts table and the scores table with its index.
    pub fn tables(&self) -> Vec<TableDef> {
        vec![
            TableDef {
                name: self.config.posts_table.clone(),
                partition_key: KeyAttribute::new("user", "S"),
                sort_key: Some(KeyAttribute::new("post", "S")),
                indexes: Vec::new(),
            },
            TableDef {
                name: self.config.scores_table.clone(),
                partition_key: KeyAttribute::new("board", "S"),
                sort_key: Some(KeyAttribute::new("player", "S")),
                indexes: vec![IndexDef {
                    name: SCORE_INDEX.into(),
                    partition_key: KeyAttribute::new("board", "S"),
                    sort_key: Some(KeyAttribute::new("score", "N")),
                }],
            },
        ]
    }

    /// The DynamoDB operations it issues: PutItem for posts and loading, Query for feeds and
    /// the index, UpdateItem for scores.
    pub fn operations(&self) -> Vec<&'static str> {
        vec!["PutItem", "Query", "UpdateItem"]
    }

    /// A score of 0 for every (board, player).
    pub fn next_load(&mut self) -> Option<Op> {
        let i = self.load_next;
        if i >= self.config.boards * self.config.players {
            return None;
        }
        self.load_next += 1;
        let (board, player) = (i / self.config.players, i % self.config.players);
        self.scores.insert((board, player), Score::default());
        let body = json!({
            "TableName": self.config.scores_table,
            "Item": {"board": s(board_key(board)), "player": s(player_key(player)), "score": n(0)},
        });
        Some(Op::single("load_score", "PutItem", body, Ack::None))
    }

    /// The next operation.
    pub fn next_op(&mut self) -> Op {
        match self.mix.next(&mut self.rng) {
            Kind::Post => {
                let user = self.users.next_key(&mut self.rng, self.config.users);
                let id = self.posts.len() as u64;
                self.posts.push((user, State::Pending));
                let body = json!({
                    "TableName": self.config.posts_table,
                    "Item": {"user": s(user_key(user)), "post": s(post_key(id)), "text": s(payload(&user_key(user), id, self.config.post_bytes))},
                    "ConditionExpression": "attribute_not_exists(post)",
                });
                Op::single("post", "PutItem", body, Ack::Issued(id))
            }
            Kind::ReadFeed => {
                let user = self.users.next_key(&mut self.rng, self.config.users);
                let body = json!({
                    "TableName": self.config.posts_table,
                    "KeyConditionExpression": "#user = :user",
                    "ExpressionAttributeNames": {"#user": "user"},
                    "ExpressionAttributeValues": {":user": s(user_key(user))},
                    "ScanIndexForward": false,
                    "Limit": self.config.page_size,
                });
                Op::single("read_feed", "Query", body, Ack::None)
            }
            Kind::AddScore => {
                let board = self.boards.next_key(&mut self.rng, self.config.boards);
                let player = self.players.next_key(&mut self.rng, self.config.players);
                let increment = 1 + uniform_below(&mut self.rng, self.config.increment_max);
                let body = json!({
                    "TableName": self.config.scores_table,
                    "Key": {"board": s(board_key(board)), "player": s(player_key(player))},
                    "UpdateExpression": "ADD score :d",
                    "ExpressionAttributeValues": {":d": n(increment as i64)},
                });
                // The increment, board and player travel in the request.
                Op::single("add_score", "UpdateItem", body, Ack::None)
            }
            Kind::TopScores => {
                let board = self.boards.next_key(&mut self.rng, self.config.boards);
                let body = json!({
                    "TableName": self.config.scores_table,
                    "IndexName": SCORE_INDEX,
                    "KeyConditionExpression": "board = :board",
                    "ExpressionAttributeValues": {":board": s(board_key(board))},
                    "ScanIndexForward": false,
                    "Limit": self.config.page_size,
                });
                Op::single("top_scores", "Query", body, Ack::None)
            }
        }
    }

    /// Keeps acknowledgements and checks the order of what reads returned.
    pub fn complete(&mut self, op: &Op, result: &Result<Value, DriverError>) -> Outcome {
        let body = &op.calls[0].body;
        match (op.name, result) {
            ("post", _) => {
                if let Ack::Issued(id) = op.ack {
                    if let Some(post) = self.posts.get_mut(id as usize) {
                        post.1 = if result.is_ok() { State::Acknowledged } else { State::Uncertain };
                    }
                }
            }
            ("load_score", Err(_)) => {
                let key = (
                    parse_suffix(body["Item"]["board"]["S"].as_str(), "BOARD#"),
                    parse_suffix(body["Item"]["player"]["S"].as_str(), "PLAYER#"),
                );
                if let (Some(board), Some(player)) = key {
                    self.scores.entry((board, player)).or_default().load_failed = true;
                }
            }
            ("add_score", _) => {
                let key = (
                    parse_suffix(body["Key"]["board"]["S"].as_str(), "BOARD#"),
                    parse_suffix(body["Key"]["player"]["S"].as_str(), "PLAYER#"),
                );
                let increment: i64 =
                    body["ExpressionAttributeValues"][":d"]["N"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0);
                if let (Some(board), Some(player)) = key {
                    let score = self.scores.entry((board, player)).or_default();
                    if result.is_ok() {
                        score.acknowledged += increment;
                    } else {
                        score.uncertain += increment;
                    }
                }
            }
            ("read_feed", Ok(response)) => {
                let keys: Vec<&str> = page(response).filter_map(|item| item["post"]["S"].as_str()).collect();
                if keys.windows(2).any(|w| w[0] <= w[1]) {
                    self.order_violations.push(format!("feed page not newest first: {keys:?}"));
                }
            }
            ("top_scores", Ok(response)) => {
                let scores: Vec<i64> =
                    page(response).filter_map(|item| item["score"]["N"].as_str()?.parse().ok()).collect();
                if scores.windows(2).any(|w| w[0] < w[1]) {
                    self.order_violations.push(format!("top scores not highest first: {scores:?}"));
                }
            }
            _ => {}
        }
        match result {
            Ok(_) => Outcome::Ok,
            Err(error) => failure_outcome(error),
        }
    }

    /// Checks the invariant (see the module documentation).
    pub async fn check<A: DynamoApi>(&self, api: &A) -> Result<CheckReport, DriverError> {
        let posts = scan_all(api, &self.config.posts_table, None).await?;
        let scores = scan_all(api, &self.config.scores_table, None).await?;
        let index = scan_all(api, &self.config.scores_table, Some(SCORE_INDEX)).await?;
        let mut report = CheckReport::new(&self.name);

        let stored: BTreeSet<(String, String)> = posts
            .iter()
            .filter_map(|item| Some((get_s(item, "user")?.to_owned(), get_s(item, "post")?.to_owned())))
            .collect();
        let mut violations = Vec::new();
        if stored.len() != posts.len() {
            violations.push(format!("{} posts without string keys", posts.len() - stored.len()));
        }
        for (id, &(user, state)) in self.posts.iter().enumerate() {
            let key = (user_key(user), post_key(id as u64));
            if state == State::Acknowledged && !stored.contains(&key) {
                violations.push(format!("acknowledged post {} of {} is missing", key.1, key.0));
            }
        }
        let issued: BTreeSet<(String, String)> =
            self.posts.iter().enumerate().map(|(id, &(user, _))| (user_key(user), post_key(id as u64))).collect();
        violations
            .extend(stored.difference(&issued).map(|(user, post)| format!("post {post} of {user} was never issued")));
        let acknowledged = self.posts.iter().filter(|(_, state)| *state == State::Acknowledged).count();
        report.count("posts_acknowledged", acknowledged as u64);
        report.count("posts_stored", stored.len() as u64);
        report.check(
            "every acknowledged post is stored, and nothing else",
            violations,
            format!("{} posts stored", stored.len()),
        );

        let mut table_scores = BTreeSet::new();
        let mut bounds = Vec::new();
        for item in &scores {
            let (Some(board), Some(player)) = (get_s(item, "board"), get_s(item, "player")) else {
                bounds.push("score item without string keys".to_owned());
                continue;
            };
            let score = get_n(item, "score").unwrap_or(i64::MIN);
            table_scores.insert((board.to_owned(), player.to_owned(), score));
            let key = (parse_suffix(Some(board), "BOARD#"), parse_suffix(Some(player), "PLAYER#"));
            let expected = match key {
                (Some(b), Some(p)) => self.scores.get(&(b, p)).copied(),
                _ => None,
            };
            match expected {
                Some(sums) if score < sums.acknowledged || score > sums.acknowledged + sums.uncertain => {
                    bounds.push(format!(
                        "{board}/{player} has score {score}, acknowledged {} (+{} unacknowledged)",
                        sums.acknowledged, sums.uncertain
                    ))
                }
                Some(_) => {}
                None => bounds.push(format!("{board}/{player} was never loaded or scored")),
            }
        }
        // Every item whose load or an increment was acknowledged must be there; one whose
        // load failed and was never incremented for sure may be missing.
        let present: BTreeSet<(&str, &str)> = table_scores.iter().map(|(b, p, _)| (b.as_str(), p.as_str())).collect();
        let missing: Vec<String> = self
            .scores
            .iter()
            .filter(|(_, sums)| !sums.load_failed || sums.acknowledged > 0)
            .map(|(&(board, player), _)| (board_key(board), player_key(player)))
            .filter(|(board, player)| !present.contains(&(board.as_str(), player.as_str())))
            .map(|(board, player)| format!("{board}/{player}"))
            .collect();
        if !missing.is_empty() {
            bounds.push(format!(
                "{} acknowledged score items missing, for example {}",
                missing.len(),
                missing[..missing.len().min(MISSING_NAMED_MAX)].join(", ")
            ));
        }
        report.count("score_items", scores.len() as u64);
        report.check(
            "each score lies between its acknowledged increments and those plus the unacknowledged ones",
            bounds,
            format!("{} scores", scores.len()),
        );

        let index_scores: BTreeSet<(String, String, i64)> = index
            .iter()
            .filter_map(|item| {
                Some((get_s(item, "board")?.to_owned(), get_s(item, "player")?.to_owned(), get_n(item, "score")?))
            })
            .collect();
        let mut index_violations = Vec::new();
        if index.len() != index_scores.len() {
            index_violations.push(format!("{} index entries, {} distinct", index.len(), index_scores.len()));
        }
        index_violations
            .extend(table_scores.difference(&index_scores).map(|e| format!("{e:?} missing from the index")));
        index_violations.extend(index_scores.difference(&table_scores).map(|e| format!("{e:?} in the index only")));
        report.check(
            "the score index holds exactly the table's scores",
            index_violations,
            format!("{} index entries", index.len()),
        );
        report.check("feed and top-score pages came back in order", self.order_violations.clone(), String::new());
        Ok(report)
    }
}

fn page(response: &Value) -> impl Iterator<Item = &Value> {
    response["Items"].as_array().into_iter().flatten()
}

fn parse_suffix(text: Option<&str>, prefix: &str) -> Option<u64> {
    text?.strip_prefix(prefix)?.parse().ok()
}

fn user_key(user: u64) -> String {
    format!("USER#{user:08}")
}

fn post_key(id: u64) -> String {
    format!("POST#{id:012}")
}

/// Missing score items a violation names.
const MISSING_NAMED_MAX: usize = 5;

fn board_key(board: u64) -> String {
    format!("BOARD#{board:04}")
}

fn player_key(player: u64) -> String {
    format!("PLAYER#{player:08}")
}
