//! Text analysis shared by profile building and matching: tokens, stems, phrases.
