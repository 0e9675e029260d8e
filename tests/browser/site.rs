//! The site served on a real local port (Rocket bound to port 0), as a browser reaches it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use latchkey::auth::two_factor::{code_at, new_recovery_codes, new_secret};
use latchkey::auth::{PasswordHasher, Seal, Sessions};
use latchkey::clock::Clock;
use latchkey::db::Db;
use latchkey::models::{NewUser, Role, TwoFactor, User};
use rocket::fairing::AdHoc;
use rocket::Shutdown;

use crate::db::{base_figment, PASSWORD};

/// The authenticator secret and unused recovery codes of each admin the tests enrolled, by
/// database URL and username.
type Enrolled = BTreeMap<(String, String), (String, Vec<String>)>;
static ENROLLED: Mutex<Enrolled> = Mutex::new(BTreeMap::new());

/// One running instance; several may share a database, like instances behind a balancer.
pub struct Site {
    /// `http://127.0.0.1:<port>`
    pub origin: String,
    database_url: String,
    clock: Clock,
    /// Encrypts the two-factor secrets of the admins it enrols, as the site stores them.
    seal: Seal,
    db: Db,
    hasher: PasswordHasher,
    shutdown: Shutdown,
}

impl Site {
    /// Starts an instance on `database_url` and waits until it listens.
    pub async fn start(database_url: &str) -> Site {
        Site::start_with(database_url, &[]).await
    }

    /// Starts an instance on `database_url` with these settings over the test ones (keys as in
    /// `Rocket.toml`, such as `token_ttl_secs`) and waits until it listens.
    pub async fn start_with(database_url: &str, settings: &[(&str, i64)]) -> Site {
        let mut figment = base_figment(database_url);
        for (key, value) in settings {
            figment = figment.merge((*key, *value));
        }
        Site::launch(database_url, figment).await
    }

    /// Starts an instance on `database_url` with these text settings over the test ones (such
    /// as `smtp_url`) and waits until it listens.
    pub async fn start_with_text(database_url: &str, settings: &[(&str, &str)]) -> Site {
        let mut figment = base_figment(database_url);
        for (key, value) in settings {
            figment = figment.merge((*key, *value));
        }
        Site::launch(database_url, figment).await
    }

    async fn launch(database_url: &str, figment: rocket::figment::Figment) -> Site {
        let mail_dir =
            std::env::temp_dir().join(format!("latchkey-browser-mail-{}", std::process::id()));
        let figment = figment
            .merge(("mail_dir", mail_dir.display().to_string()))
            .merge(("address", "127.0.0.1"))
            .merge(("port", 0))
            // Rocket's own signal handling belongs to the test process, not to each instance.
            .merge(("shutdown.ctrlc", false))
            .merge(("shutdown.signals", Vec::<String>::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let rocket = latchkey::rocket(figment).attach(AdHoc::on_liftoff("report port", |r| {
            Box::pin(async move {
                let db = r.state::<Db>().expect("db managed").clone();
                let hasher = r.state::<PasswordHasher>().expect("hasher managed").clone();
                let clock = r.state::<Clock>().expect("clock managed").clone();
                let seal = r
                    .state::<Sessions>()
                    .expect("sessions managed")
                    .two_factor_seal();
                let _ = tx.send((r.config().port, db, hasher, clock, seal, r.shutdown()));
            })
        }));
        tokio::spawn(async move {
            if let Err(e) = rocket.launch().await {
                eprintln!("the site stopped: {e}");
            }
        });
        let (port, db, hasher, clock, seal, shutdown) =
            tokio::time::timeout(std::time::Duration::from_secs(30), rx)
                .await
                .expect("the site starts within 30 s")
                .expect("the site starts");
        Site {
            origin: format!("http://127.0.0.1:{port}"),
            database_url: database_url.to_string(),
            clock,
            seal,
            db,
            hasher,
            shutdown,
        }
    }

    /// The absolute URL of `path` on this instance.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Inserts a user with the test password straight into the database.
    pub async fn create_user(&self, username: &str, role: Role) -> User {
        self.create_user_with_email(username, &format!("{username}@example.com"), role)
            .await
    }

    /// Whether `username` is an admin this site's database enrolled in two-factor.
    pub fn recovery_code_needed(&self, username: &str) -> bool {
        let key = (self.database_url.clone(), username.to_string());
        ENROLLED
            .lock()
            .is_ok_and(|enrolled| enrolled.contains_key(&key))
    }

    /// An unused recovery code of an admin that [`Site::create_user`] enrolled in two-factor
    /// (on this site's database, so any instance on it can sign them in).
    pub fn recovery_code(&self, username: &str) -> Option<String> {
        let key = (self.database_url.clone(), username.to_string());
        ENROLLED.lock().ok()?.get_mut(&key)?.1.pop()
    }

    /// The code the authenticator app of an enrolled admin shows at the site's time now.
    pub fn app_code(&self, username: &str) -> Option<String> {
        let key = (self.database_url.clone(), username.to_string());
        let secret = ENROLLED.lock().ok()?.get(&key)?.0.clone();
        code_at(&secret, self.clock.now())
    }

    /// The site's clock (tests move it).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Inserts a user with the test password and `email` straight into the database. An admin
    /// is enrolled in two-factor sign-in too, as the site requires of admins by default (see
    /// [`Site::recovery_code`]).
    pub async fn create_user_with_email(&self, username: &str, email: &str, role: Role) -> User {
        let hash = self.hasher.hash(PASSWORD.to_string()).await.expect("hash");
        let new = NewUser::new(
            username,
            email,
            hash,
            role,
            latchkey::clock::Clock::default().db_now(),
        );
        let user = self
            .db
            .run(move |conn| User::create(conn, &new))
            .await
            .expect("insert user")
            .expect("username free");
        if role == Role::Admin {
            let (id, codes, secret) = (user.id.clone(), new_recovery_codes(), new_secret());
            let sealed = self.seal.seal(&id, &secret).expect("seal the secret");
            let stored = codes.clone();
            self.db
                .run(move |conn| {
                    let now = latchkey::clock::Clock::default().db_now();
                    TwoFactor::begin_setup(conn, &id, &sealed, now)?;
                    TwoFactor::enable(conn, &id, 0, &stored, now)
                })
                .await
                .expect("enrol the admin");
            let key = (self.database_url.clone(), username.to_string());
            ENROLLED.lock().unwrap().insert(key, (secret, codes));
        }
        user
    }

    /// The database, for a test that seeds rows through the library's models.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The user named `username`, as the database has it now.
    pub async fn user(&self, username: &str) -> Option<User> {
        let login = username.to_string();
        self.db
            .run(move |conn| User::find_by_login(conn, &login))
            .await
            .expect("query user")
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.shutdown.clone().notify();
    }
}
