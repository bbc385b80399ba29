;;; -*- Mode: Lisp; Syntax: Common-Lisp; -*-

(define-language
  :grammar
  '(((S $any) -> (S1 $any))
    ((S (Compound $s1 $s2)) -> (S1 $s1) (Conjunction) (S1 $s2))
    
    ((S1 (Statement $v)) -> (NP $subj) (VP $subj $tense $v))
    ((S1 (Acknowledge $a)) -> (Acknowledge $a))
    ((S1 (Command $v)) -> (VP Self present $v))
    ((S1 (Question $v)) -> (Aux $tense) (NP $subj) (VP $subj $tense $v))
    ((S1 (Question $v)) -> (Be $tense) (NP $subj) (Be-Arg $subj $tense $v))

    ((Be-Arg $subj $tense (Occur $tense (loc $subj $loc))) ->
     (Loc-Adjunct $tense (loc $subj $loc)))

    ((VP $subj $tense (Occur $tense $v)) -> (VP1 $subj $tense $v))
    ((VP $subj $tense (Occur $tense $v)) -> (Aux $tense)(VP1 $subj present $v))

    ((VP1 $subj $tense $v) -> (VP2 $subj $tense $v) (Adjunct? $v))

    ((VP2 $subj $tense ($rel $subj $loc)) ->
     (Verb/in $rel $tense))
    ((VP2 $subj $tense ($rel $subj $loc $obj)) ->
     (Verb/tr $rel $tense) (NP $obj))
    ((VP2 $subj $tense ($rel $subj $loc $obj $obj2)) -> 
     (Verb/di $rel $tense) (NP $obj) (NP $obj2))
    ((VP2 $subj $tense (loc $subj $loc)) ->
     (Be $tense) (Loc-Adjunct $tense (loc $subj $loc)))

    ((NP $n) -> (Pronoun $n))
    ((NP $n) -> (Article) (Noun $n))
    ((NP $n) -> (Noun $n))
    ((NP ($x $y)) -> (Number $x) (Number $y))

    ((PP ($prep $n)) -> (Prep $prep) (NP $n))
    ((Adjunct? $v) ->)
    ((Adjunct? $v) -> (Loc-Adjunct $tense $v))
    #+Allegro ((Loc-Adjunct $tense ($rel $subj $loc @rest)) -> (PP $loc))
