//! The real PostgreSQL and MariaDB servers the emulator runs behind its RDS instances
//! (scripts/emulator/databases.py): attach one to an emulated instance, write to it as its
//! administrator through Debian's own clients (psql, mariadb), and the logins Lifeboat's validator
//! and heartbeat writer use, kept in the emulator's Secrets Manager as RDS keeps them.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use crate::Moto;

/// A server as the emulator answers `attach` / `replicate`: where, which engine, its administrator.
#[derive(Debug, Clone)]
pub struct RealDb {
    pub host: String,
    pub port: u16,
    /// `postgres` or `mysql` (MariaDB).
    pub engine: String,
    pub admin_user: String,
    pub admin_password: String,
    pub ca: PathBuf,
}

impl RealDb {
    fn of(answer: &Value) -> RealDb {
        let text = |k: &str| answer[k].as_str().unwrap_or_else(|| panic!("no {k} in {answer}")).to_owned();
        RealDb {
            host: text("host"),
            port: answer["port"].as_u64().and_then(|p| u16::try_from(p).ok()).expect("port"),
            engine: text("engine"),
            admin_user: text("admin_user"),
            admin_password: text("admin_password"),
            ca: PathBuf::from(text("ca")),
        }
    }

    /// Make the emulated instance `id` in `region` a real server of its engine.
    pub fn attach(moto: &Moto, region: &str, id: &str) -> RealDb {
        RealDb::of(&moto.post("/_lifeboat/db/attach", &json!({"region": region, "instance": id})))
    }

    /// Make the emulated cluster `id` a real server (its instances answer on it).
    pub fn attach_cluster(moto: &Moto, region: &str, id: &str) -> RealDb {
        RealDb::of(&moto.post("/_lifeboat/db/attach", &json!({"region": region, "cluster": id})))
    }

    /// Replication catches up now: the replica `id` gets its source's data as it is.
    pub fn replicate(moto: &Moto, region: &str, id: &str) -> RealDb {
        RealDb::of(&moto.post("/_lifeboat/db/replicate", &json!({"region": region, "instance": id})))
    }

    /// The real server behind `region`'s instance or cluster `id` (a restore, a promoted replica),
    /// as the emulator lists it; its administrator is the one its source had.
    pub fn behind(&self, moto: &Moto, region: &str, id: &str) -> Option<RealDb> {
        let listing = moto.get("/_lifeboat/db/servers");
        let servers = listing["servers"].as_array().cloned().unwrap_or_default();
        let server = servers.iter().find(|s| s["region"] == region && s["id"] == id)?;
        let port = server["port"].as_u64().and_then(|p| u16::try_from(p).ok())?;
        Some(RealDb { port, ..self.clone() })
    }

    pub fn postgres(&self) -> bool {
        self.engine == "postgres"
    }

    /// Run `sql` in `database` as `user` (TLS, the emulator's CA verified): the client's output,
    /// or what it said when it failed.
    pub fn run_as(&self, user: &str, password: &str, database: &str, sql: &str) -> Result<String, String> {
        let out = if self.postgres() {
            Command::new("psql")
                .arg(format!(
                    "host={} port={} dbname={database} user={user} sslmode=verify-ca sslrootcert={}",
                    self.host,
                    self.port,
                    self.ca.display()
                ))
                .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql])
                .env("PGPASSWORD", password)
                .output()
        } else {
            Command::new("mariadb")
                .args([
                    &format!("--host={}", self.host),
                    &format!("--port={}", self.port),
                    &format!("--user={user}"),
                    &format!("--password={password}"),
                    &format!("--ssl-ca={}", self.ca.display()),
                    "--ssl-verify-server-cert",
                    "--batch",
                    "--skip-column-names",
                    "--database",
                    database,
                    "-e",
                    sql,
                ])
                .output()
        }
        .map_err(|e| format!("client: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// `sql` as the administrator; panics with the server's words when it fails.
    pub fn admin(&self, database: &str, sql: &str) -> String {
        self.run_as(&self.admin_user, &self.admin_password, database, sql).unwrap_or_else(|e| panic!("{sql}\n{e}"))
    }

    /// The administrator's own database (where `create database` runs).
    pub fn admin_database(&self) -> &'static str {
        if self.postgres() {
            "postgres"
        } else {
            "mysql"
        }
    }
}

/// Logins of the `orders` database: the validator's read-only user and the heartbeat writer.
pub const VALIDATOR: (&str, &str) = ("lifeboat_validator", "validator-pass-1");
pub const HEARTBEAT: (&str, &str) = ("lifeboat_heartbeat", "heartbeat-pass-1");

/// The validator's user for RDS IAM authentication (`validate.connect.iam_user`; the stack's
/// ValidatorDbUser in the tests' beds).
pub const IAM_READER: &str = "lifeboat_iam";

/// `IAM_READER`, read-only as `VALIDATOR`, made as docs/configuration.md tells a DBA to: on
/// PostgreSQL a member of `rds_iam`, which then logs in by token only; on MariaDB the emulator's
/// stand-in for `IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'`, PAM with the cleartext client
/// plugin (scripts/emulator/rdsiam.py).
pub fn iam_reader(db: &RealDb) {
    let u = IAM_READER;
    if db.postgres() {
        db.admin(
            "orders",
            &format!(
                "create role {u} login;
                 grant rds_iam to {u};
                 grant connect on database orders to {u};
                 grant usage on schema public to {u};
                 grant select on users, orders, lifeboat_heartbeat to {u};"
            ),
        );
    } else {
        db.admin(
            "orders",
            &format!(
                "create user '{u}'@'%' identified via pam using 'lifeboat-rds-iam' require ssl;
                 grant select on orders.users to '{u}'@'%';
                 grant select on orders.orders to '{u}'@'%';
                 grant select on orders.lifeboat_heartbeat to '{u}'@'%';"
            ),
        );
    }
}

/// The `orders` database an application would have: `users` rows and `orders` stamped with
/// `updated_at`, plus what docs/configuration.md tells a DBA to create for Lifeboat: a read-only
/// validator login, and the heartbeat's one-row table with a writer allowed only that table.
pub fn orders_schema(db: &RealDb, users: u32) {
    db.admin(db.admin_database(), "create database orders");
    let (v, vp) = VALIDATOR;
    let (h, hp) = HEARTBEAT;
    if db.postgres() {
        db.admin(
            "orders",
            &format!(
                "create table users (id serial primary key, name text not null);
                 create table orders (id serial primary key, user_id int not null references users(id),
                                      updated_at timestamptz not null default now());
                 insert into users (name) select 'user ' || g from generate_series(1, {users}) g;
                 create table lifeboat_heartbeat (id int primary key check (id = 1), at timestamptz not null);
                 create role {v} login password '{vp}';
                 grant connect on database orders to {v};
                 grant usage on schema public to {v};
                 grant select on users, orders, lifeboat_heartbeat to {v};
                 create role {h} login password '{hp}';
                 grant connect on database orders to {h};
                 grant usage on schema public to {h};
                 grant select (id), insert, update on lifeboat_heartbeat to {h};"
            ),
        );
    } else {
        db.admin(
            "orders",
            &format!(
                "create table users (id int auto_increment primary key, name varchar(100) not null);
                 create table orders (id int auto_increment primary key, user_id int not null,
                                      updated_at datetime(6) not null);
                 insert into users (name) select concat('user ', seq) from seq_1_to_{users};
                 create table lifeboat_heartbeat (id int primary key check (id = 1), at datetime(6) not null);
                 create user '{v}'@'%' identified by '{vp}' require ssl;
                 grant select on orders.users to '{v}'@'%';
                 grant select on orders.orders to '{v}'@'%';
                 grant select on orders.lifeboat_heartbeat to '{v}'@'%';
                 create user '{h}'@'%' identified by '{hp}' require ssl;
                 grant select, insert, update on orders.lifeboat_heartbeat to '{h}'@'%';"
            ),
        );
    }
}

/// An instance in `region` of `engine` (`postgres`, `mariadb`, `mysql`) whose server is real, with
/// the `orders` schema and `users` users.
pub async fn real_instance(moto: &Moto, region: &str, id: &str, engine: &str, users: u32) -> RealDb {
    let mut create = moto
        .rds(region)
        .await
        .create_db_instance()
        .db_instance_identifier(id)
        .engine(engine)
        .db_instance_class("db.t3.micro")
        .master_username("lifeboat")
        .master_user_password("correct-horse-battery")
        .allocated_storage(20);
    if engine == "mariadb" {
        // moto knows no default version for MariaDB.
        create = create.engine_version("10.11.8");
    }
    create.send().await.expect("create instance");
    let db = RealDb::attach(moto, region, id);
    orders_schema(&db, users);
    db
}

/// An order written `ago_seconds` before now by the database's own clock (UTC).
pub fn order_written(db: &RealDb, ago_seconds: u32) {
    let sql = if db.postgres() {
        format!("insert into orders (user_id, updated_at) values (1, now() - interval '{ago_seconds} seconds')")
    } else {
        format!("insert into orders (user_id, updated_at) values (1, utc_timestamp(6) - interval {ago_seconds} second)")
    };
    db.admin("orders", &sql);
}

/// A Secrets Manager secret named `name` holding `{"username", "password"}` as RDS keeps one; its ARN.
pub async fn login_secret(moto: &Moto, region: &str, name: &str, login: (&str, &str)) -> String {
    let value = json!({"username": login.0, "password": login.1, "engine": "postgres"}).to_string();
    aws_sdk_secretsmanager::Client::new(&moto.sdk(region).await)
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .expect("secret")
        .arn()
        .expect("secret arn")
        .to_owned()
}
