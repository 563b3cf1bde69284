//! How the command line names values of types that live elsewhere: the
//! clap side of them stays here, so that the rooms that own the types
//! (report, impair) know nothing of the command line.

use clap::builder::PossibleValue;
use clap::ValueEnum;

use crate::impair::Direction;
use crate::report::trace::TraceStyle;

impl ValueEnum for TraceStyle {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::Native, Self::Aioquic, Self::Json]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            Self::Native => "native",
            Self::Aioquic => "aioquic",
            Self::Json => "json",
        }))
    }
}

impl ValueEnum for Direction {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::Both, Self::ToServer, Self::ToClient]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            Self::Both => "both",
            Self::ToServer => "to-server",
            Self::ToClient => "to-client",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_has_its_command_line_name() {
        for style in TraceStyle::value_variants() {
            let name = style.to_possible_value().expect("a name");
            assert_eq!(TraceStyle::from_str(name.get_name(), false), Ok(*style));
        }
        for direction in Direction::value_variants() {
            let name = direction.to_possible_value().expect("a name");
            assert_eq!(Direction::from_str(name.get_name(), false), Ok(*direction));
        }
    }
}
