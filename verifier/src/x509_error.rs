//! Why BoringSSL rejected a chain: one X509 verify error, typed.
//!
//! The numbers are BoringSSL's `X509_V_ERR_*` (taken from its headers through
//! `boring-sys`, so they cannot drift from the library linked); OpenSSL uses
//! the same numbers for all of them but 67, which is BoringSSL's own. The
//! words are BoringSSL's `X509_verify_cert_error_string`, which people search
//! for, so they are never rephrased here.

use boring_sys as sys;

use crate::ffi;

/// An X509 verify error: one variant, documented, per error quicprobe
/// explains; [`X509Error::Other`] for any other number BoringSSL reports.
///
/// When several are found in one chain, [`X509Error::rank`] orders them by
/// how much they tell a person: a date or a name that is wrong says exactly
/// what to fix; "unable to get local issuer certificate" often only says
/// that chain building stopped somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum X509Error {
    /// The issuer of a certificate found in the trust store could not be found
    /// (error 2, `X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT`): the store holds an
    /// intermediate but not the root above it, and strict clients take no
    /// partial chains.
    UnableToGetIssuerCert,
    /// A signature in the chain does not verify with the issuer's public key
    /// (error 7, `X509_V_ERR_CERT_SIGNATURE_FAILURE`).
    CertSignatureFailure,
    /// The certificate is not valid yet: the time it is verified at is
    /// earlier than its notBefore date (error 9, `X509_V_ERR_CERT_NOT_YET_VALID`).
    CertNotYetValid,
    /// The certificate has expired: the time it is verified at is later than
    /// its notAfter date (error 10, `X509_V_ERR_CERT_HAS_EXPIRED`).
    CertHasExpired,
    /// The leaf is self-signed and that same certificate is not in the trust
    /// store (error 18, `X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT`).
    DepthZeroSelfSignedCert,
    /// The chain could be built from the certificates sent up to a
    /// self-signed root, but that root is not in the trust store (error 19,
    /// `X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN`).
    SelfSignedCertInChain,
    /// The issuer of a certificate that was sent could be found neither among
    /// the certificates sent nor in the trust store (error 20,
    /// `X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY`): a missing intermediate,
    /// or a root the client lacks.
    UnableToGetIssuerCertLocally,
    /// No signature could be verified: the chain holds a single certificate
    /// that is not self-signed and whose issuer is unknown (error 21,
    /// `X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE`).
    UnableToVerifyLeafSignature,
    /// The chain is longer than the maximum verification depth (error 22,
    /// `X509_V_ERR_CERT_CHAIN_TOO_LONG`).
    CertChainTooLong,
    /// A certificate that issued another is not a valid CA: it is not marked
    /// as one (basicConstraints), or its extensions do not fit the purpose
    /// (error 24, `X509_V_ERR_INVALID_CA`).
    InvalidCa,
    /// A CA's basicConstraints pathLenConstraint is exceeded: more CAs sit
    /// below it than it allows (error 25, `X509_V_ERR_PATH_LENGTH_EXCEEDED`).
    PathLengthExceeded,
    /// A certificate cannot be used for the purpose checked, here a TLS
    /// server: its extended key usage lacks serverAuth (error 26,
    /// `X509_V_ERR_INVALID_PURPOSE`).
    InvalidPurpose,
    /// The root is not marked as trusted for the purpose checked (error 27,
    /// `X509_V_ERR_CERT_UNTRUSTED`).
    CertUntrusted,
    /// A would-be issuer's keyUsage does not allow signing certificates
    /// (error 32, `X509_V_ERR_KEYUSAGE_NO_CERTSIGN`).
    KeyUsageNoCertSign,
    /// A name in the leaf is outside the permitted subtrees of a CA's name
    /// constraints (error 47, `X509_V_ERR_PERMITTED_VIOLATION`).
    PermittedViolation,
    /// A name in the leaf is inside the excluded subtrees of a CA's name
    /// constraints (error 48, `X509_V_ERR_EXCLUDED_VIOLATION`).
    ExcludedViolation,
    /// The leaf's subjectAltName does not carry the host name dialled (error
    /// 62, `X509_V_ERR_HOSTNAME_MISMATCH`).
    HostnameMismatch,
    /// The leaf's subjectAltName does not carry the IP address dialled (error
    /// 64, `X509_V_ERR_IP_ADDRESS_MISMATCH`).
    IpAddressMismatch,
    /// A CA above the leaf has name constraints, but the leaf has no
    /// subjectAltName to check them against; BoringSSL refuses rather than
    /// check the subject CN (error 67, `X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS`,
    /// BoringSSL only).
    NameConstraintsWithoutSans,
    /// Any other error BoringSSL reports, by its number; never one of the
    /// numbers above, nor -1. 0 (`X509_V_OK`) lands here only for a
    /// rejection BoringSSL gave no reason for.
    Other(i32),
    /// The server sent no certificate at all, so there was nothing to
    /// verify. Not a BoringSSL error: it reports number 20 (where a client
    /// with nothing to build from ends) and the text "no certificate was sent".
    NoCertificate,
    /// The verification could not run: BoringSSL failed internally (out of
    /// memory, a context it could not set up) before reaching a verdict. Not
    /// an X509 error; where a number is needed it reports -1.
    InternalFailure,
}

impl X509Error {
    /// The number [`X509Error::InternalFailure`] reports.
    const INTERNAL_FAILURE_CODE: i32 = -1;

    /// The error BoringSSL reports as `code`, e.g. 20 for
    /// [`X509Error::UnableToGetIssuerCertLocally`]; -1 gives back
    /// [`X509Error::InternalFailure`].
    pub fn from_code(code: i32) -> Self {
        match code {
            sys::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT => Self::UnableToGetIssuerCert,
            sys::X509_V_ERR_CERT_SIGNATURE_FAILURE => Self::CertSignatureFailure,
            sys::X509_V_ERR_CERT_NOT_YET_VALID => Self::CertNotYetValid,
            sys::X509_V_ERR_CERT_HAS_EXPIRED => Self::CertHasExpired,
            sys::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT => Self::DepthZeroSelfSignedCert,
            sys::X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN => Self::SelfSignedCertInChain,
            sys::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY => Self::UnableToGetIssuerCertLocally,
            sys::X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE => Self::UnableToVerifyLeafSignature,
            sys::X509_V_ERR_CERT_CHAIN_TOO_LONG => Self::CertChainTooLong,
            sys::X509_V_ERR_INVALID_CA => Self::InvalidCa,
            sys::X509_V_ERR_PATH_LENGTH_EXCEEDED => Self::PathLengthExceeded,
            sys::X509_V_ERR_INVALID_PURPOSE => Self::InvalidPurpose,
            sys::X509_V_ERR_CERT_UNTRUSTED => Self::CertUntrusted,
            sys::X509_V_ERR_KEYUSAGE_NO_CERTSIGN => Self::KeyUsageNoCertSign,
            sys::X509_V_ERR_PERMITTED_VIOLATION => Self::PermittedViolation,
            sys::X509_V_ERR_EXCLUDED_VIOLATION => Self::ExcludedViolation,
            sys::X509_V_ERR_HOSTNAME_MISMATCH => Self::HostnameMismatch,
            sys::X509_V_ERR_IP_ADDRESS_MISMATCH => Self::IpAddressMismatch,
            sys::X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS => Self::NameConstraintsWithoutSans,
            Self::INTERNAL_FAILURE_CODE => Self::InternalFailure,
            other => Self::Other(other),
        }
    }

    /// The number, as BoringSSL and OpenSSL print it ("verify error:num=20");
    /// 20 for [`X509Error::NoCertificate`], -1 for [`X509Error::InternalFailure`].
    pub fn code(self) -> i32 {
        match self {
            Self::UnableToGetIssuerCert => sys::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
            Self::CertSignatureFailure => sys::X509_V_ERR_CERT_SIGNATURE_FAILURE,
            Self::CertNotYetValid => sys::X509_V_ERR_CERT_NOT_YET_VALID,
            Self::CertHasExpired => sys::X509_V_ERR_CERT_HAS_EXPIRED,
            Self::DepthZeroSelfSignedCert => sys::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
            Self::SelfSignedCertInChain => sys::X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
            Self::UnableToGetIssuerCertLocally | Self::NoCertificate => {
                sys::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
            }
            Self::UnableToVerifyLeafSignature => sys::X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE,
            Self::CertChainTooLong => sys::X509_V_ERR_CERT_CHAIN_TOO_LONG,
            Self::InvalidCa => sys::X509_V_ERR_INVALID_CA,
            Self::PathLengthExceeded => sys::X509_V_ERR_PATH_LENGTH_EXCEEDED,
            Self::InvalidPurpose => sys::X509_V_ERR_INVALID_PURPOSE,
            Self::CertUntrusted => sys::X509_V_ERR_CERT_UNTRUSTED,
            Self::KeyUsageNoCertSign => sys::X509_V_ERR_KEYUSAGE_NO_CERTSIGN,
            Self::PermittedViolation => sys::X509_V_ERR_PERMITTED_VIOLATION,
            Self::ExcludedViolation => sys::X509_V_ERR_EXCLUDED_VIOLATION,
            Self::HostnameMismatch => sys::X509_V_ERR_HOSTNAME_MISMATCH,
            Self::IpAddressMismatch => sys::X509_V_ERR_IP_ADDRESS_MISMATCH,
            Self::NameConstraintsWithoutSans => sys::X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS,
            Self::Other(code) => code,
            Self::InternalFailure => Self::INTERNAL_FAILURE_CODE,
        }
    }

    /// BoringSSL's words for the error (`X509_verify_cert_error_string`), e.g.
    /// "unable to get local issuer certificate"; quicprobe's own for
    /// [`X509Error::NoCertificate`] and [`X509Error::InternalFailure`].
    pub fn text(self) -> &'static str {
        match self {
            Self::NoCertificate => "no certificate was sent",
            Self::InternalFailure => "verification could not run (BoringSSL internal error)",
            other => ffi::verify_error_string(other.code()),
        }
    }

    /// A missing issuer (errors 20, 2 and 21): the path stops at a
    /// certificate whose issuer is neither sent nor trusted.
    pub fn is_missing_issuer(self) -> bool {
        matches!(
            self,
            Self::UnableToGetIssuerCertLocally
                | Self::UnableToGetIssuerCert
                | Self::UnableToVerifyLeafSignature
        )
    }

    /// How useful the error is to a person, higher first. Errors that name
    /// one field of one certificate come first, because they say exactly what
    /// to change; errors that only say chain building failed come last,
    /// because they often follow from the others, or hide the real cause.
    ///
    /// 1. no certificate at all: nothing else can be said;
    /// 2. the dates (9, 10): renew or fix the clock;
    /// 3. the name (62, 64): the wrong certificate for this host;
    /// 4. a signature that does not verify (7): certificates of different keys
    ///    mixed, or tampered with;
    /// 5. the leaf not for TLS servers (26), name constraints (47, 48, 67),
    ///    a path length (25), an issuer that may not issue (24, 32): a
    ///    certificate issued with the wrong extensions;
    /// 6. a self-signed certificate that is not trusted, the leaf itself (18)
    ///    a little above a root (19, 27): the chain is complete, but its
    ///    anchor is the client's decision;
    /// 7. any other error, which quicprobe cannot explain further;
    /// 8. a chain too long (22): usually a loop the diagnosis names better;
    /// 9. a missing issuer (20, 2, 21): chain building stopped, which says
    ///    where but not why (webpki's `UnknownIssuer` is its last, too);
    /// 10. the verification could not run: nothing about the chain at all.
    pub fn rank(self) -> u32 {
        match self {
            Self::NoCertificate => 300,
            Self::CertNotYetValid | Self::CertHasExpired => 290,
            Self::HostnameMismatch | Self::IpAddressMismatch => 280,
            Self::CertSignatureFailure => 260,
            Self::InvalidPurpose => 240,
            Self::PermittedViolation
            | Self::ExcludedViolation
            | Self::NameConstraintsWithoutSans => 230,
            Self::PathLengthExceeded => 220,
            Self::InvalidCa | Self::KeyUsageNoCertSign => 210,
            Self::DepthZeroSelfSignedCert => 160,
            Self::SelfSignedCertInChain | Self::CertUntrusted => 150,
            Self::Other(_) => 100,
            Self::CertChainTooLong => 50,
            Self::UnableToGetIssuerCert
            | Self::UnableToGetIssuerCertLocally
            | Self::UnableToVerifyLeafSignature => 10,
            Self::InternalFailure => 0,
        }
    }

    /// Of two errors, the one more useful to a person (see
    /// [`X509Error::rank`]); `a` when they rank the same.
    pub fn most_specific(a: Self, b: Self) -> Self {
        if b.rank() > a.rank() {
            b
        } else {
            a
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify_error_string;

    /// The numbers of every error quicprobe explains, as BoringSSL's x509.h
    /// numbers them.
    const KNOWN: [(i32, X509Error); 19] = [
        (2, X509Error::UnableToGetIssuerCert),
        (7, X509Error::CertSignatureFailure),
        (9, X509Error::CertNotYetValid),
        (10, X509Error::CertHasExpired),
        (18, X509Error::DepthZeroSelfSignedCert),
        (19, X509Error::SelfSignedCertInChain),
        (20, X509Error::UnableToGetIssuerCertLocally),
        (21, X509Error::UnableToVerifyLeafSignature),
        (22, X509Error::CertChainTooLong),
        (24, X509Error::InvalidCa),
        (25, X509Error::PathLengthExceeded),
        (26, X509Error::InvalidPurpose),
        (27, X509Error::CertUntrusted),
        (32, X509Error::KeyUsageNoCertSign),
        (47, X509Error::PermittedViolation),
        (48, X509Error::ExcludedViolation),
        (62, X509Error::HostnameMismatch),
        (64, X509Error::IpAddressMismatch),
        (67, X509Error::NameConstraintsWithoutSans),
    ];

    #[test]
    fn every_known_code_round_trips() {
        for (code, error) in KNOWN {
            assert_eq!(X509Error::from_code(code), error, "{code}");
            assert_eq!(error.code(), code, "{error:?}");
        }
    }

    #[test]
    fn every_known_error_has_boringssl_words() {
        for (code, error) in KNOWN {
            assert_eq!(error.text(), verify_error_string(code), "{error:?}");
            assert_ne!(
                error.text(),
                "unknown certificate verification error",
                "BoringSSL knows error {code}"
            );
        }
        assert_eq!(
            X509Error::UnableToGetIssuerCertLocally.text(),
            "unable to get local issuer certificate"
        );
        assert_eq!(
            X509Error::NameConstraintsWithoutSans.text(),
            "Issuer has name constraints but leaf has no SANs"
        );
    }

    #[test]
    fn other_keeps_an_unknown_code_and_its_boringssl_words() {
        for code in [0, 1, 23, 71, 4242] {
            let error = X509Error::from_code(code);
            assert_eq!(error, X509Error::Other(code));
            assert_eq!(error.code(), code);
            assert_eq!(error.text(), verify_error_string(code));
        }
        assert_eq!(X509Error::from_code(23).text(), "certificate revoked");
    }

    #[test]
    fn internal_failure_reports_minus_one_and_says_verification_could_not_run() {
        let error = X509Error::InternalFailure;
        assert_eq!(error.code(), -1);
        assert_eq!(X509Error::from_code(-1), error);
        assert_eq!(
            error.text(),
            "verification could not run (BoringSSL internal error)"
        );
    }

    #[test]
    fn no_certificate_reports_twenty_in_its_own_words() {
        let error = X509Error::NoCertificate;
        assert_eq!(error.code(), 20);
        assert_eq!(error.text(), "no certificate was sent");
        assert_eq!(
            X509Error::from_code(20),
            X509Error::UnableToGetIssuerCertLocally,
            "BoringSSL's 20 is the missing issuer"
        );
    }

    #[test]
    fn only_errors_20_2_and_21_are_a_missing_issuer() {
        let missing: Vec<i32> = KNOWN
            .iter()
            .filter(|(_, e)| e.is_missing_issuer())
            .map(|(code, _)| *code)
            .collect();
        assert_eq!(missing, [2, 20, 21]);
        assert!(!X509Error::NoCertificate.is_missing_issuer());
    }

    #[test]
    fn dates_and_names_outrank_a_bad_signature_which_outranks_a_missing_issuer() {
        use X509Error::*;
        let most_useful_first = [
            NoCertificate,
            CertHasExpired,
            HostnameMismatch,
            CertSignatureFailure,
            InvalidPurpose,
            PermittedViolation,
            PathLengthExceeded,
            InvalidCa,
            DepthZeroSelfSignedCert,
            SelfSignedCertInChain,
            Other(23),
            CertChainTooLong,
            UnableToGetIssuerCertLocally,
            InternalFailure,
        ];
        for pair in most_useful_first.windows(2) {
            assert!(pair[0].rank() > pair[1].rank(), "{pair:?}");
        }
    }

    #[test]
    fn errors_of_one_kind_rank_the_same() {
        use X509Error::*;
        for group in [
            &[CertNotYetValid, CertHasExpired][..],
            &[HostnameMismatch, IpAddressMismatch],
            &[
                PermittedViolation,
                ExcludedViolation,
                NameConstraintsWithoutSans,
            ],
            &[InvalidCa, KeyUsageNoCertSign],
            &[SelfSignedCertInChain, CertUntrusted],
            &[Other(1), Other(23), Other(4242)],
            &[
                UnableToGetIssuerCert,
                UnableToGetIssuerCertLocally,
                UnableToVerifyLeafSignature,
            ],
        ] {
            assert!(
                group.iter().all(|e| e.rank() == group[0].rank()),
                "{group:?}"
            );
        }
    }

    /// (first, second, the one `most_specific` must pick): the higher rank
    /// either way round, and the first of two equals.
    #[test]
    fn most_specific_picks_the_higher_rank_and_keeps_the_first_of_equals() {
        use X509Error::*;
        let cases = [
            (
                UnableToGetIssuerCertLocally,
                HostnameMismatch,
                HostnameMismatch,
            ),
            (
                HostnameMismatch,
                UnableToGetIssuerCertLocally,
                HostnameMismatch,
            ),
            (
                CertSignatureFailure,
                UnableToGetIssuerCert,
                CertSignatureFailure,
            ),
            (CertHasExpired, HostnameMismatch, CertHasExpired),
            (CertNotYetValid, CertHasExpired, CertNotYetValid),
            (CertHasExpired, CertNotYetValid, CertHasExpired),
        ];
        for (first, second, wanted) in cases {
            assert_eq!(
                X509Error::most_specific(first, second),
                wanted,
                "{first:?} vs {second:?}"
            );
        }
    }
}
