//! The platform's clients (investors and strategy providers) as the Back Office sees them:
//! the fixed value sets, and the parsing of every field a person or an import file can type.
//! A [`ValidClient`] can only be built by [`validate`], so the store never sees a phone number
//! that is not E.164, a country that is not ISO 3166-1 alpha-2, or an unknown language.

use crate::Email;
use std::collections::BTreeMap;

crate::value_set! {
    /// Investor, strategy provider, or both.
    pub enum ClientRole {
        Investor = ("investor", "Investor"),
        StrategyProvider = ("strategy_provider", "Strategy provider"),
        Both = ("both", "Investor and strategy provider"),
    }
}

crate::value_set! {
    /// Active, or Blocked ("Clients Delete" only ever blocks: the client's history stays).
    pub enum ClientStatus {
        Active = ("active", "Active"),
        Blocked = ("blocked", "Blocked"),
    }
}

/// ISO 3166-1 alpha-2 codes with their English short names, in code order.
#[rustfmt::skip]
pub const COUNTRIES: &[(&str, &str)] = &[
    ("AD", "Andorra"), ("AE", "United Arab Emirates"), ("AF", "Afghanistan"),
    ("AG", "Antigua and Barbuda"), ("AI", "Anguilla"), ("AL", "Albania"), ("AM", "Armenia"),
    ("AO", "Angola"), ("AQ", "Antarctica"), ("AR", "Argentina"), ("AS", "American Samoa"),
    ("AT", "Austria"), ("AU", "Australia"), ("AW", "Aruba"), ("AX", "Åland Islands"),
    ("AZ", "Azerbaijan"), ("BA", "Bosnia and Herzegovina"), ("BB", "Barbados"),
    ("BD", "Bangladesh"), ("BE", "Belgium"), ("BF", "Burkina Faso"), ("BG", "Bulgaria"),
    ("BH", "Bahrain"), ("BI", "Burundi"), ("BJ", "Benin"), ("BL", "Saint Barthélemy"),
    ("BM", "Bermuda"), ("BN", "Brunei Darussalam"), ("BO", "Bolivia"),
    ("BQ", "Bonaire, Sint Eustatius and Saba"), ("BR", "Brazil"), ("BS", "Bahamas"),
    ("BT", "Bhutan"), ("BV", "Bouvet Island"), ("BW", "Botswana"), ("BY", "Belarus"),
    ("BZ", "Belize"), ("CA", "Canada"), ("CC", "Cocos (Keeling) Islands"),
    ("CD", "Congo, Democratic Republic of the"), ("CF", "Central African Republic"),
    ("CG", "Congo"), ("CH", "Switzerland"), ("CI", "Côte d'Ivoire"), ("CK", "Cook Islands"),
    ("CL", "Chile"), ("CM", "Cameroon"), ("CN", "China"), ("CO", "Colombia"),
    ("CR", "Costa Rica"), ("CU", "Cuba"), ("CV", "Cabo Verde"), ("CW", "Curaçao"),
    ("CX", "Christmas Island"), ("CY", "Cyprus"), ("CZ", "Czechia"), ("DE", "Germany"),
    ("DJ", "Djibouti"), ("DK", "Denmark"), ("DM", "Dominica"), ("DO", "Dominican Republic"),
    ("DZ", "Algeria"), ("EC", "Ecuador"), ("EE", "Estonia"), ("EG", "Egypt"),
    ("EH", "Western Sahara"), ("ER", "Eritrea"), ("ES", "Spain"), ("ET", "Ethiopia"),
    ("FI", "Finland"), ("FJ", "Fiji"), ("FK", "Falkland Islands (Malvinas)"),
    ("FM", "Micronesia"), ("FO", "Faroe Islands"), ("FR", "France"), ("GA", "Gabon"),
    ("GB", "United Kingdom"), ("GD", "Grenada"), ("GE", "Georgia"), ("GF", "French Guiana"),
    ("GG", "Guernsey"), ("GH", "Ghana"), ("GI", "Gibraltar"), ("GL", "Greenland"),
    ("GM", "Gambia"), ("GN", "Guinea"), ("GP", "Guadeloupe"), ("GQ", "Equatorial Guinea"),
    ("GR", "Greece"), ("GS", "South Georgia and the South Sandwich Islands"),
    ("GT", "Guatemala"), ("GU", "Guam"), ("GW", "Guinea-Bissau"), ("GY", "Guyana"),
    ("HK", "Hong Kong"), ("HM", "Heard Island and McDonald Islands"), ("HN", "Honduras"),
    ("HR", "Croatia"), ("HT", "Haiti"), ("HU", "Hungary"), ("ID", "Indonesia"),
    ("IE", "Ireland"), ("IL", "Israel"), ("IM", "Isle of Man"), ("IN", "India"),
    ("IO", "British Indian Ocean Territory"), ("IQ", "Iraq"), ("IR", "Iran"),
    ("IS", "Iceland"), ("IT", "Italy"), ("JE", "Jersey"), ("JM", "Jamaica"), ("JO", "Jordan"),
    ("JP", "Japan"), ("KE", "Kenya"), ("KG", "Kyrgyzstan"), ("KH", "Cambodia"),
    ("KI", "Kiribati"), ("KM", "Comoros"), ("KN", "Saint Kitts and Nevis"),
    ("KP", "Korea, Democratic People's Republic of"), ("KR", "Korea, Republic of"),
    ("KW", "Kuwait"), ("KY", "Cayman Islands"), ("KZ", "Kazakhstan"), ("LA", "Lao People's Democratic Republic"),
    ("LB", "Lebanon"), ("LC", "Saint Lucia"), ("LI", "Liechtenstein"), ("LK", "Sri Lanka"),
    ("LR", "Liberia"), ("LS", "Lesotho"), ("LT", "Lithuania"), ("LU", "Luxembourg"),
    ("LV", "Latvia"), ("LY", "Libya"), ("MA", "Morocco"), ("MC", "Monaco"),
    ("MD", "Moldova"), ("ME", "Montenegro"), ("MF", "Saint Martin (French part)"),
    ("MG", "Madagascar"), ("MH", "Marshall Islands"), ("MK", "North Macedonia"),
    ("ML", "Mali"), ("MM", "Myanmar"), ("MN", "Mongolia"), ("MO", "Macao"),
    ("MP", "Northern Mariana Islands"), ("MQ", "Martinique"), ("MR", "Mauritania"),
    ("MS", "Montserrat"), ("MT", "Malta"), ("MU", "Mauritius"), ("MV", "Maldives"),
    ("MW", "Malawi"), ("MX", "Mexico"), ("MY", "Malaysia"), ("MZ", "Mozambique"),
    ("NA", "Namibia"), ("NC", "New Caledonia"), ("NE", "Niger"), ("NF", "Norfolk Island"),
    ("NG", "Nigeria"), ("NI", "Nicaragua"), ("NL", "Netherlands"), ("NO", "Norway"),
    ("NP", "Nepal"), ("NR", "Nauru"), ("NU", "Niue"), ("NZ", "New Zealand"), ("OM", "Oman"),
    ("PA", "Panama"), ("PE", "Peru"), ("PF", "French Polynesia"), ("PG", "Papua New Guinea"),
    ("PH", "Philippines"), ("PK", "Pakistan"), ("PL", "Poland"),
    ("PM", "Saint Pierre and Miquelon"), ("PN", "Pitcairn"), ("PR", "Puerto Rico"),
    ("PS", "Palestine, State of"), ("PT", "Portugal"), ("PW", "Palau"), ("PY", "Paraguay"),
    ("QA", "Qatar"), ("RE", "Réunion"), ("RO", "Romania"), ("RS", "Serbia"),
    ("RU", "Russian Federation"), ("RW", "Rwanda"), ("SA", "Saudi Arabia"),
    ("SB", "Solomon Islands"), ("SC", "Seychelles"), ("SD", "Sudan"), ("SE", "Sweden"),
    ("SG", "Singapore"), ("SH", "Saint Helena, Ascension and Tristan da Cunha"),
    ("SI", "Slovenia"), ("SJ", "Svalbard and Jan Mayen"), ("SK", "Slovakia"),
    ("SL", "Sierra Leone"), ("SM", "San Marino"), ("SN", "Senegal"), ("SO", "Somalia"),
    ("SR", "Suriname"), ("SS", "South Sudan"), ("ST", "Sao Tome and Principe"),
    ("SV", "El Salvador"), ("SX", "Sint Maarten (Dutch part)"), ("SY", "Syrian Arab Republic"),
    ("SZ", "Eswatini"), ("TC", "Turks and Caicos Islands"), ("TD", "Chad"),
    ("TF", "French Southern Territories"), ("TG", "Togo"), ("TH", "Thailand"),
    ("TJ", "Tajikistan"), ("TK", "Tokelau"), ("TL", "Timor-Leste"), ("TM", "Turkmenistan"),
    ("TN", "Tunisia"), ("TO", "Tonga"), ("TR", "Türkiye"), ("TT", "Trinidad and Tobago"),
    ("TV", "Tuvalu"), ("TW", "Taiwan"), ("TZ", "Tanzania"), ("UA", "Ukraine"),
    ("UG", "Uganda"), ("UM", "United States Minor Outlying Islands"), ("US", "United States"),
    ("UY", "Uruguay"), ("UZ", "Uzbekistan"), ("VA", "Holy See"),
    ("VC", "Saint Vincent and the Grenadines"), ("VE", "Venezuela"),
    ("VG", "Virgin Islands (British)"), ("VI", "Virgin Islands (U.S.)"), ("VN", "Viet Nam"),
    ("VU", "Vanuatu"), ("WF", "Wallis and Futuna"), ("WS", "Samoa"), ("YE", "Yemen"),
    ("YT", "Mayotte"), ("ZA", "South Africa"), ("ZM", "Zambia"), ("ZW", "Zimbabwe"),
];

/// The languages the platform can write to its clients in: ISO 639-1 codes and names.
#[rustfmt::skip]
pub const LANGUAGES: &[(&str, &str)] = &[
    ("ar", "Arabic"), ("cs", "Czech"), ("da", "Danish"), ("de", "German"), ("el", "Greek"),
    ("en", "English"), ("es", "Spanish"), ("fa", "Persian"), ("fi", "Finnish"),
    ("fr", "French"), ("he", "Hebrew"), ("hi", "Hindi"), ("hu", "Hungarian"),
    ("id", "Indonesian"), ("it", "Italian"), ("ja", "Japanese"), ("ko", "Korean"),
    ("ms", "Malay"), ("nl", "Dutch"), ("no", "Norwegian"), ("pl", "Polish"),
    ("pt", "Portuguese"), ("ro", "Romanian"), ("ru", "Russian"), ("sk", "Slovak"),
    ("sv", "Swedish"), ("th", "Thai"), ("tr", "Turkish"), ("uk", "Ukrainian"),
    ("vi", "Vietnamese"), ("zh", "Chinese"),
];

pub fn country_name(code: &str) -> Option<&'static str> {
    COUNTRIES
        .binary_search_by(|(c, _)| (*c).cmp(code))
        .ok()
        .map(|i| COUNTRIES[i].1)
}

pub fn language_name(code: &str) -> Option<&'static str> {
    LANGUAGES
        .binary_search_by(|(c, _)| (*c).cmp(code))
        .ok()
        .map(|i| LANGUAGES[i].1)
}

/// An ISO 3166-1 alpha-2 code, upper-cased (`gb` → `GB`).
pub fn parse_country(raw: &str) -> Result<String, String> {
    let code = raw.trim().to_ascii_uppercase();
    if code.is_empty() {
        return Err("Choose a country".into());
    }
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err("Use the two-letter ISO 3166 country code, like GB or DE".into());
    }
    if country_name(&code).is_none() {
        return Err(format!("{code} is not an ISO 3166 country code"));
    }
    Ok(code)
}

/// An ISO 639-1 language code the platform writes in, lower-cased.
pub fn parse_language(raw: &str) -> Result<String, String> {
    let code = raw.trim().to_ascii_lowercase();
    if code.is_empty() {
        return Err("Choose a communication language".into());
    }
    if language_name(&code).is_none() {
        return Err(format!(
            "Use a two-letter language code the platform writes in: {}",
            LANGUAGES
                .iter()
                .map(|(c, _)| *c)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(code)
}

/// A phone number in E.164 (`+442079460958`). People may type spaces, dashes, dots and
/// brackets, and `00` for the `+`; the country code is required because clients live anywhere.
pub fn parse_phone(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("Enter a phone number".into());
    }
    let rest = if let Some(r) = s.strip_prefix('+') {
        r
    } else if let Some(r) = s.strip_prefix("00") {
        r
    } else {
        return Err(
            "Start the phone number with + and the country code, like +44 20 7946 0958".into(),
        );
    };
    let mut digits = String::with_capacity(15);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => {
                return Err(
                    "A phone number may contain only digits, spaces, dashes, dots and brackets"
                        .into(),
                )
            }
        }
    }
    if digits.starts_with('0') {
        return Err("A country code never starts with 0".into());
    }
    if digits.len() < 8 {
        return Err(
            "The phone number is too short (at least 8 digits with the country code)".into(),
        );
    }
    if digits.len() > 15 {
        return Err(
            "The phone number is too long (at most 15 digits with the country code)".into(),
        );
    }
    Ok(format!("+{digits}"))
}

pub const NAME_PART_MAX: usize = 100;
pub const CITY_MAX: usize = 100;

fn parse_name_part(raw: &str, what: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(format!("Enter the client's {what}"));
    }
    if s.chars().count() > NAME_PART_MAX {
        return Err(format!(
            "The {what} is too long (at most {NAME_PART_MAX} characters)"
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("The {what} must not contain control characters"));
    }
    // Masks are runs of asterisks: refusing them means a masked value can never be saved as real.
    if s.contains('*') {
        return Err(format!("The {what} must not contain asterisks (*)"));
    }
    Ok(s.to_string())
}

fn parse_city(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.chars().count() > CITY_MAX {
        return Err(format!(
            "The city is too long (at most {CITY_MAX} characters)"
        ));
    }
    if s.chars().any(char::is_control) {
        return Err("The city must not contain control characters".into());
    }
    Ok(s.to_string())
}

/// A client's fields as typed (a form, or one row of an import file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInput {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    pub country: String,
    pub city: String,
    pub role: String,
    pub status: String,
    pub language: String,
}

/// The fields of a client, each one parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidClient {
    pub first_name: String,
    pub last_name: String,
    pub email: Email,
    pub phone: String,
    pub country: String,
    pub city: String,
    pub role: ClientRole,
    pub status: ClientStatus,
    pub language: String,
}

impl ValidClient {
    pub fn full_name(&self) -> String {
        full_name(&self.first_name, &self.last_name)
    }
}

pub fn full_name(first: &str, last: &str) -> String {
    format!("{first} {last}")
}

/// The key that name search and sort use: "first last", lower-cased.
pub fn name_key(first: &str, last: &str) -> String {
    full_name(first, last).to_lowercase()
}

/// Problems keyed by field name (`first_name`, `email` …), one message each.
pub type ClientErrors = BTreeMap<&'static str, String>;

/// The field names of [`ClientInput`], in form order, with the column titles of the CSV file.
pub const FIELDS: [(&str, &str); 9] = [
    ("first_name", "First name"),
    ("last_name", "Last name"),
    ("email", "Email"),
    ("phone", "Phone"),
    ("country", "Country"),
    ("city", "City"),
    ("role", "Role"),
    ("status", "Status"),
    ("language", "Language"),
];

/// Parses every field and reports every problem at once.
pub fn validate(input: &ClientInput) -> Result<ValidClient, ClientErrors> {
    let mut errors = ClientErrors::new();
    let mut take = |field: &'static str, r: Result<String, String>| match r {
        Ok(v) => v,
        Err(m) => {
            errors.insert(field, m);
            String::new()
        }
    };
    let first_name = take(
        "first_name",
        parse_name_part(&input.first_name, "first name"),
    );
    let last_name = take("last_name", parse_name_part(&input.last_name, "last name"));
    let phone = take("phone", parse_phone(&input.phone));
    let country = take("country", parse_country(&input.country));
    let city = take("city", parse_city(&input.city));
    let language = take("language", parse_language(&input.language));
    let email = Email::parse(&input.email)
        .map_err(|e| errors.insert("email", e.to_string()))
        .ok();
    let role = ClientRole::from_code(&input.role);
    if role.is_none() {
        errors.insert("role", "Choose Investor, Strategy provider, or both".into());
    }
    let status = ClientStatus::from_code(&input.status);
    if status.is_none() {
        errors.insert("status", "Choose Active or Blocked".into());
    }
    match (email, role, status) {
        (Some(email), Some(role), Some(status)) if errors.is_empty() => Ok(ValidClient {
            first_name,
            last_name,
            email,
            phone,
            country,
            city,
            role,
            status,
            language,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use proptest::prelude::*;

    fn good() -> ClientInput {
        ClientInput {
            first_name: " Ann ".into(),
            last_name: "Lee".into(),
            email: "Ann.Lee@Example.com".into(),
            phone: "+44 (20) 7946-0958".into(),
            country: "gb".into(),
            city: "London".into(),
            role: "Strategy provider".into(),
            status: "active".into(),
            language: "EN".into(),
        }
    }

    #[test]
    fn a_good_client_is_normalised() {
        let v = validate(&good()).unwrap();
        assert_eq!(v.first_name, "Ann");
        assert_eq!(v.phone, "+442079460958");
        assert_eq!(v.country, "GB");
        assert_eq!(v.language, "en");
        assert_eq!(v.role, ClientRole::StrategyProvider);
        assert_eq!(v.email.key(), "ann.lee@example.com");
        assert_eq!(v.full_name(), "Ann Lee");
    }

    #[test]
    fn every_bad_field_is_reported_with_its_own_message() {
        let bad = ClientInput {
            first_name: "".into(),
            last_name: "J****".into(),
            email: "nope".into(),
            phone: "020 7946 0958".into(),
            country: "XX".into(),
            city: "a\u{7}b".into(),
            role: "trader".into(),
            status: "gone".into(),
            language: "xx".into(),
        };
        let e = validate(&bad).unwrap_err();
        assert_eq!(e.len(), 9, "{e:?}");
        assert_eq!(e["first_name"], "Enter the client's first name");
        assert!(e["last_name"].contains("asterisks"));
        assert!(e["phone"].contains("country code"));
        assert_eq!(e["country"], "XX is not an ISO 3166 country code");
    }

    #[test]
    fn phones() {
        assert_eq!(parse_phone("0049 30 1234567").unwrap(), "+49301234567");
        assert_eq!(parse_phone("+1 (212) 555-0100").unwrap(), "+12125550100");
        assert!(parse_phone("+12").unwrap_err().contains("too short"));
        assert!(parse_phone("+1234567890123456")
            .unwrap_err()
            .contains("too long"));
        assert!(parse_phone("+44 20 abc")
            .unwrap_err()
            .contains("only digits"));
        assert!(parse_phone("+0 20 7946 0958").is_err());
        assert!(
            parse_phone("+*******89").is_err(),
            "a mask is never a phone number"
        );
    }

    #[test]
    fn tables_are_sorted_for_binary_search() {
        assert!(COUNTRIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(LANGUAGES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(COUNTRIES.len(), 249);
        assert_eq!(country_name("DE"), Some("Germany"));
        assert!(
            parse_country("UK").is_err(),
            "UK is not the ISO code of the United Kingdom"
        );
    }

    #[test]
    fn days() {
        assert_eq!(Timestamp::from_date("1970-01-01"), Some(Timestamp(0)));
        assert_eq!(
            Timestamp::from_date("2000-02-29").unwrap().iso(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(Timestamp::from_date("2001-02-29"), None);
        assert_eq!(Timestamp::from_date("yesterday"), None);
    }

    proptest! {
        #[test]
        fn e164_is_a_fixed_point(digits in "[1-9][0-9]{7,14}") {
            let p = parse_phone(&format!("+{digits}")).unwrap();
            prop_assert_eq!(&p, &format!("+{digits}"));
            prop_assert_eq!(parse_phone(&p).unwrap(), p);
        }

        #[test]
        fn day_round_trips(days in 0i64..2_900_000) {
            let t = Timestamp(days * 86_400_000);
            let iso = t.iso();
            prop_assert_eq!(Timestamp::from_date(&iso[..10]), Some(t));
        }
    }
}
