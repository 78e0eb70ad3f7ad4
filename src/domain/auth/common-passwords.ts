/**
 * Passwords refused at registration, change and reset even though they pass the length rule: a
 * shipped list of widely used passwords of 10+ characters (shorter ones fail the length rule), plus
 * shapes no list can enumerate (one repeated character, keyboard or digit runs, the user's own
 * name or email). Compared case-insensitively.
 */
const COMMON = `
password123 password1234 password12345 password123456 password1! password01 passw0rd123 p@ssw0rd123
1234567890 0987654321 12345678910 123456789a 123456789q 1234567890q a123456789 q123456789 1q2w3e4r5t
1q2w3e4r5t6y 1qaz2wsx3edc zaq12wsx3edc qwertyuiop qwertyuiop123 qwerty12345 qwerty123456 qwerty1234
asdfghjkl1 asdfghjkl123 zxcvbnm123 zxcvbnm1234 q1w2e3r4t5 q1w2e3r4t5y6 1234qwerasdf qazwsxedc123
iloveyou123 iloveyou12 iloveyou1234 letmein123 letmein1234 welcome123 welcome1234 welcome2024 welcome2025
welcome2026 changeme123 changeme1234 administrator admin12345 admin123456 administrator1 football123
baseball123 basketball soccer12345 dragon1234 sunshine123 princess123 superman123 starwars123
trustno1234 michael123 jennifer123 computer123 internet123 monkey12345 shadow12345 master12345
liverpool1 chelsea123 arsenal123 pokemon123 naruto1234 minecraft1 minecraft123 fortnite123
charlie123 jordan2323 mustang123 samsung123 whatever123 freedom123 letmein12345 hello12345 hello123456
hellohello helloworld helloworld1 helloworld123 abcdefghij abcdefg123 abc1234567 abcd123456
aaaaaaaaaa qqqqqqqqqq 1111111111 0000000000 1212121212 1234512345 1122334455 123123123123 789456123a
summer2024 summer2025 summer2026 winter2024 winter2025 winter2026 spring2025 autumn2025 spring2026
password2024 password2025 password2026 january2025 december2025 secret12345 security123 loveyou123
lovelove123 babygirl123 sweetheart princess12 blink182182 whatever12 qwertyqwerty asdasdasd123
asdfasdfasdf zxczxczxc1 1q2w3e4r5t6y7u 1qazxsw23edc 123qweasdzxc qweasdzxc123 passwordpassword
iloveyouiloveyou trustnoone1 gigwire123 gigwire1234 marketplace
`;

const commonPasswords = new Set(COMMON.split(/\s+/).filter((word) => word !== ''));

const SEQUENCES = ['0123456789', 'abcdefghijklmnopqrstuvwxyz', 'qwertyuiopasdfghjklzxcvbnm'];

function isRun(password: string): boolean {
  if (/^(.)\1+$/.test(password)) return true;
  return SEQUENCES.some((seq) => seq.includes(password) || [...seq].reverse().join('').includes(password));
}

/** Why a password is refused, or undefined when it is acceptable. */
export function weakPasswordReason(password: string, personal: readonly string[]): string | undefined {
  const lower = password.toLowerCase();
  if (commonPasswords.has(lower)) return 'is one of the most common passwords';
  if (isRun(lower)) return 'is a run of repeated or consecutive characters';
  for (const word of personal) {
    const part = word.toLowerCase();
    if (part.length >= 3 && lower.includes(part)) return 'must not contain your username or email';
  }
  return undefined;
}
