"""Every word the period report shows, in English and Danish (CONTRACT §9: ``locale=da|en``).

One dict per locale with the same keys (a test checks they match); ``{name}`` placeholders are
filled with numbers and dates already formatted for the locale.
"""

from __future__ import annotations

LOCALES = ("en", "da")

EN: dict[str, str] = {
    "title": "What employee advocacy brought",
    "report": "Ripples report",
    "sub": "Ripples report for {period} · credit model {model} · generated {generated}",
    "md_sub": "Credit model: {model}. Generated {generated}.",
    "all_time": "all time",
    "beginning": "the beginning",
    "now": "now",
    "period_range": "{start} to {end}",
    "model.first_touch": "first touch",
    "model.last_touch": "last touch",
    "model.linear": "linear",
    "model.position_based": "position-based",
    "model.time_decay": "time decay",
    "group.company": "Company page",
    "group.ambassadors": "Ambassadors (ring 1)",
    "group.spillover": "Spillover sharers (ring ≥ 2)",
    "group.independent": "Independent sharers",
    "section.reach": "reach",
    "section.value": "value",
    "section.applicants": "applicants",
    "section.hires": "hires",
    "section.ripples": "ripples",
    "section.evidence": "evidence",
    "section.estimate": "estimate",
    "section.jobs": "jobs",
    "csv.section": "section",
    "csv.figure": "figure",
    "csv.value": "value",
    "fig.posts": "{group}: posts",
    "fig.impressions": "{group}: impressions",
    "fig.clicks": "{group}: clicks",
    "fig.mean": "{group}: mean impressions per post",
    "fig.spillover_sharers": "Spillover sharers",
    "fig.reach_ratio": "Reach ratio (ambassador ÷ company post)",
    "fig.emv": "Earned media value",
    "fig.applicants": "Applicants",
    "fig.attributed": "Attributed",
    "fig.unattributed": "Unattributed",
    "fig.credit": "Credit, {ring}",
    "fig.hires": "Hires",
    "fig.ring_sharers": "Ring {ring} sharers",
    "fig.inspired": "Inspired colleagues (observed)",
    "fig.expected": "Expected by chance",
    "fig.baseline": "Baseline-adjusted spillover",
    "fig.lift": "Lift",
    "fig.interval": "{figure}, {level} interval",
    "fig.posts_in": "Posts in {origin}",
    "fig.posts_in_mean": "Posts in {origin}: mean impressions",
    "fig.own_vs": "Own words vs prepared (mean impressions)",
    "fig.own_vs_interval": "Own words vs prepared, interval",
    "fig.drivers": "Sharers behind the drivers",
    "fig.followers": "Reach vs followers (Spearman)",
    "fig.activity": "Reach vs activity (Spearman)",
    "fig.est_impressions": "{n} ambassadors: impressions (estimate)",
    "fig.est_applicants": "{n} ambassadors: applicants credited (estimate)",
    "fig.job": "{name}: applicants (attributed)",
    "origin.own": "own words",
    "origin.suggested": "suggested",
    "origin.template": "template",
    "ring.company": "company (ring 0)",
    "ring.independent": "independent",
    "ring.n": "ring {ring}",
    "no_family": "no family",
    "hard": " (hard to recruit)",
    "chance.yes": "distinguishable from chance",
    "chance.not_yet": "not yet distinguishable from chance",
    "chance.unknown": "not yet measurable",
    "s.reach": "Ambassador posts reached {ratio} the company page's mean ({level} interval "
    "{interval}): {chance}. About {posts} more ambassador and company posts would halve the "
    "interval.",
    "s.reach_none": "Reach ratio: not measurable yet (no ambassador or company posts with reach).",
    "s.lift": "Colleagues exposed to the programme started sharing {lift} as often as the "
    "unexposed ({level} interval {interval}): {chance}.",
    "s.lift_none": "Lift: not measurable yet (no unexposed colleague started sharing).",
    "s.baseline": "{n} colleagues started sharing beyond what chance predicts ({level} interval "
    "{interval}): {chance}. About three times as many colleagues in the comparison would halve "
    "the interval.",
    "s.origin": "Posts in the employees' own words reached {ratio} the mean of prepared posts "
    "({level} interval {interval}, {own} own vs {prepared} prepared): {chance}.",
    "s.origin_none": "Own words vs prepared text: not measurable yet (posts of both kinds needed).",
    "s.drivers_few": "What drives reach: too few sharers ({n}) to say; five are needed.",
    "s.drivers": "Over {n} sharers, reach per post follows network size with ρ = {followers} "
    "and activity with ρ = {activity} (1 = in step, 0 = unrelated).",
    "s.scale": "Estimate: {n} ambassadors would likely bring about {impressions} impressions "
    "({impressions_interval}) and {applicants} credited applicants ({applicants_interval}) in "
    "a period like this one, scaled from the {today} ambassadors of today. {assumptions}",
    "s.hard": "Hard-to-recruit families: {items}.",
    "s.hard_item": "{family} {applicants} applicants, {attributed} through employees or "
    "tracked links",
    "tile.reach_ratio": "Reach ratio",
    "tile.reach_ratio_note": "ambassador vs company post",
    "tile.applicants": "Applicants credited",
    "tile.applicants_note": "of {total} applicants",
    "tile.hires": "Hires credited",
    "tile.hires_note": "of {total} hires",
    "tile.baseline": "Baseline-adjusted spillover",
    "tile.baseline_note": "{inspired} inspired, {expected} expected by chance",
    "tile.emv": "Earned media value",
    "h.ripples": "The ripples",
    "h.spillover": "spillover",
    "h.inspired": "Colleagues inspired (observed)",
    "h.baseline": "Baseline-adjusted",
    "h.sure": "How sure, in plain words",
    "h.reach": "Reach: company page vs ambassadors vs colleagues",
    "h.mean": "Mean impressions per post",
    "h.total": "Total impressions",
    "h.credit": "Applicants and hires credited, by ring",
    "h.applicants": "Applicants",
    "h.hires": "Hires",
    "h.none": "None attributed.",
    "h.weeks": "Week by week",
    "h.top": "Top sharers",
    "h.how": "How each number is computed",
    "unit.impressions": "impressions",
    "unit.impressions_per_post": "impressions per post",
    "unit.credit": "credit (applications of 1 each)",
    "unit.week": "week starting",
    "series.posts": "Posts",
    "series.impressions": "Impressions",
    "series.applicants": "Applicants",
    "series.per_week": "{series} per week",
    "series.week_of": "week of {date}: {value}",
    "series.none": "No weeks in the period.",
    "legend.rings": "Each circle is a ring; the number is its sharers.",
    "graph.aria": "The ripple graph: who inspired whom, ring by ring",
    "graph.none": "No colleague has inspired another yet.",
    "graph.ring": "ring {ring}",
    "graph.axis": "inspired by the ring to the left →",
    "graph.reshare": "reshared a colleague's post",
    "graph.engagement": "reacted to or commented on it",
    "graph.weight": "line width and number: the share of inspiration",
    "graph.more": "and {n} more colleagues not drawn (the {shown} who inspired most are shown)",
    "h.graph": "Who inspired whom",
    "legend.graph": "Each dot is a colleague who shared; a line runs from the colleague whose "
    "post they saw to them. Removed employees are shown as —.",
    "rings.label": "ring {ring}: {n} sharers",
    "rings.company": "company",
    "rings.aria": "Ripple rings with sharer counts",
    "col.name": "name",
    "col.ring": "ring",
    "col.posts": "posts",
    "col.impressions": "impressions",
    "col.applicant_credit": "applicant credit",
    "col.hire_credit": "hire credit",
    "col.inspired": "inspired",
    "how.reach": "Reach",
    "how.reach_text": "A post's reach is its latest polled LinkedIn snapshot (impressions); sums "
    "are over posts published in the period, grouped by the author's ring.",
    "how.ratio": "Reach ratio",
    "how.ratio_text": "Mean impressions per ambassador post ÷ mean impressions per company page "
    "post.",
    "how.emv": "Earned media value",
    "how.emv_text": "Employee posts only: impressions ÷ 1000 × CPM + clicks × CPC, with the "
    "prices set in the attribution service.",
    "how.rings": "Rings",
    "how.rings_text": "Ring 1 are the ambassadors. A colleague is in ring k+1 when, within 14 "
    "days before their first share, they reshared or engaged with a post of a ring-k colleague; "
    "otherwise they are independent.",
    "how.credit": "Applicant credit",
    "how.credit_text": "Touches are tracked-link clicks by the applicant's browser within 30 "
    "days before applying, the link code they applied through, and referrals. The chosen model "
    "splits each application's credit of 1 among the touches; hires are credited like their "
    "application.",
    "how.baseline": "Spillover with a baseline",
    "how.baseline_text": "Among colleagues outside the programme who had not shared before the "
    "period, the exposed ones who started sharing are compared with what the unexposed "
    "colleagues' adoption rate would predict: baseline-adjusted = observed − expected by "
    "chance; lift = exposed rate ÷ unexposed rate.",
    "how.sure": "How sure the numbers are",
    "how.sure_text": "{level} intervals from a seeded bootstrap (the attribution service "
    "resamples the period's posts within each group for the reach ratios, and the exposed and "
    "unexposed colleagues for lift and baseline-adjusted spillover; the same data give the same "
    "intervals). An effect is distinguishable from chance when its interval leaves out 'no "
    "effect' (a ratio of 1×, a baseline-adjusted count of 0). An interval's width shrinks with "
    "the square root of the posts or colleagues behind it: about four times as many halve it.",
    "how.origin": "Own words vs prepared text",
    "how.origin_text": "Mean impressions per employee post written in the employee's own words "
    "÷ mean per post of suggested or template text.",
    "how.drivers": "What drives reach",
    "how.drivers_text": "Spearman rank correlation, over the period's sharers, of mean "
    "impressions per post with their follower count (network size) and with their number of "
    "posts (activity); shown when at least five sharers are known.",
    "link.expired": "This report link has expired",
    "link.invalid": "This report link is not valid",
    "link.expired_text": "Links to a report work for a limited time. Ask the person who sent it "
    "for a new link.",
    "link.invalid_text": "The link may have been changed or cut short. Ask the person who sent "
    "it for a new link.",
}

DA: dict[str, str] = {
    "title": "Hvad medarbejdernes deling gav",
    "report": "Ripples-rapport",
    "sub": "Ripples-rapport for {period} · krediteringsmodel {model} · dannet {generated}",
    "md_sub": "Krediteringsmodel: {model}. Dannet {generated}.",
    "all_time": "hele perioden",
    "beginning": "begyndelsen",
    "now": "nu",
    "period_range": "{start} til {end}",
    "model.first_touch": "første berøring",
    "model.last_touch": "sidste berøring",
    "model.linear": "lineær",
    "model.position_based": "positionsbaseret",
    "model.time_decay": "tidsforfald",
    "group.company": "Virksomhedssiden",
    "group.ambassadors": "Ambassadører (ring 1)",
    "group.spillover": "Smittedelere (ring ≥ 2)",
    "group.independent": "Uafhængige delere",
    "section.reach": "rækkevidde",
    "section.value": "værdi",
    "section.applicants": "ansøgere",
    "section.hires": "ansættelser",
    "section.ripples": "ringe i vandet",
    "section.evidence": "evidens",
    "section.estimate": "skøn",
    "section.jobs": "jobfamilier",
    "csv.section": "afsnit",
    "csv.figure": "nøgletal",
    "csv.value": "værdi",
    "fig.posts": "{group}: opslag",
    "fig.impressions": "{group}: visninger",
    "fig.clicks": "{group}: klik",
    "fig.mean": "{group}: gennemsnitlige visninger pr. opslag",
    "fig.spillover_sharers": "Smittedelere",
    "fig.reach_ratio": "Rækkeviddeforhold (ambassadør ÷ virksomhedsopslag)",
    "fig.emv": "Optjent medieværdi",
    "fig.applicants": "Ansøgere",
    "fig.attributed": "Tilskrevet",
    "fig.unattributed": "Ikke tilskrevet",
    "fig.credit": "Kredit, {ring}",
    "fig.hires": "Ansættelser",
    "fig.ring_sharers": "Delere i ring {ring}",
    "fig.inspired": "Inspirerede kolleger (observeret)",
    "fig.expected": "Forventet ved tilfældighed",
    "fig.baseline": "Baseline-justeret smitte",
    "fig.lift": "Løft",
    "fig.interval": "{figure}, {level}-interval",
    "fig.posts_in": "Opslag med {origin}",
    "fig.posts_in_mean": "Opslag med {origin}: gennemsnitlige visninger",
    "fig.own_vs": "Egne ord mod forberedt tekst (gennemsnitlige visninger)",
    "fig.own_vs_interval": "Egne ord mod forberedt tekst, interval",
    "fig.drivers": "Delere bag drivkræfterne",
    "fig.followers": "Rækkevidde mod følgere (Spearman)",
    "fig.activity": "Rækkevidde mod aktivitet (Spearman)",
    "fig.est_impressions": "{n} ambassadører: visninger (skøn)",
    "fig.est_applicants": "{n} ambassadører: krediterede ansøgere (skøn)",
    "fig.job": "{name}: ansøgere (tilskrevet)",
    "origin.own": "egne ord",
    "origin.suggested": "foreslået tekst",
    "origin.template": "skabelontekst",
    "ring.company": "virksomheden (ring 0)",
    "ring.independent": "uafhængige",
    "ring.n": "ring {ring}",
    "no_family": "ingen jobfamilie",
    "hard": " (svær at rekruttere til)",
    "chance.yes": "kan skelnes fra tilfældighed",
    "chance.not_yet": "kan endnu ikke skelnes fra tilfældighed",
    "chance.unknown": "kan endnu ikke måles",
    "s.reach": "Ambassadørernes opslag nåede {ratio} virksomhedssidens gennemsnit "
    "({level}-interval {interval}): {chance}. Omkring {posts} flere ambassadør- og "
    "virksomhedsopslag ville halvere intervallet.",
    "s.reach_none": "Rækkeviddeforhold: kan endnu ikke måles (ingen ambassadør- eller "
    "virksomhedsopslag med rækkevidde).",
    "s.lift": "Kolleger, der blev eksponeret for programmet, begyndte at dele {lift} så ofte "
    "som de ikke-eksponerede ({level}-interval {interval}): {chance}.",
    "s.lift_none": "Løft: kan endnu ikke måles (ingen ikke-eksponeret kollega begyndte at dele).",
    "s.baseline": "{n} kolleger begyndte at dele ud over, hvad tilfældighed forudsiger "
    "({level}-interval {interval}): {chance}. Omkring tre gange så mange kolleger i "
    "sammenligningen ville halvere intervallet.",
    "s.origin": "Opslag med medarbejdernes egne ord nåede {ratio} gennemsnittet for forberedte "
    "opslag ({level}-interval {interval}, {own} med egne ord mod {prepared} forberedte): "
    "{chance}.",
    "s.origin_none": "Egne ord mod forberedt tekst: kan endnu ikke måles (der skal være opslag "
    "af begge slags).",
    "s.drivers_few": "Hvad driver rækkevidden: for få delere ({n}) til at sige noget; der skal "
    "være mindst fem.",
    "s.drivers": "Blandt {n} delere følger rækkevidden pr. opslag netværkets størrelse med "
    "ρ = {followers} og aktiviteten med ρ = {activity} (1 = i takt, 0 = uden sammenhæng).",
    "s.scale": "Skøn: {n} ambassadører ville sandsynligvis give omkring {impressions} visninger "
    "({impressions_interval}) og {applicants} krediterede ansøgere ({applicants_interval}) i en "
    "periode som denne, skaleret fra de {today} ambassadører i dag. {assumptions}",
    "s.hard": "Jobfamilier, der er svære at rekruttere til: {items}.",
    "s.hard_item": "{family} {applicants} ansøgere, {attributed} via medarbejdere eller sporede "
    "links",
    "tile.reach_ratio": "Rækkeviddeforhold",
    "tile.reach_ratio_note": "ambassadør- mod virksomhedsopslag",
    "tile.applicants": "Krediterede ansøgere",
    "tile.applicants_note": "af {total} ansøgere",
    "tile.hires": "Krediterede ansættelser",
    "tile.hires_note": "af {total} ansættelser",
    "tile.baseline": "Baseline-justeret smitte",
    "tile.baseline_note": "{inspired} inspirerede, {expected} forventet ved tilfældighed",
    "tile.emv": "Optjent medieværdi",
    "h.ripples": "Ringene i vandet",
    "h.spillover": "smitte",
    "h.inspired": "Inspirerede kolleger (observeret)",
    "h.baseline": "Baseline-justeret",
    "h.sure": "Hvor sikre tallene er, i almindelige ord",
    "h.reach": "Rækkevidde: virksomhedssiden mod ambassadører mod kolleger",
    "h.mean": "Gennemsnitlige visninger pr. opslag",
    "h.total": "Visninger i alt",
    "h.credit": "Krediterede ansøgere og ansættelser, efter ring",
    "h.applicants": "Ansøgere",
    "h.hires": "Ansættelser",
    "h.none": "Ingen tilskrevet.",
    "h.weeks": "Uge for uge",
    "h.top": "De mest aktive delere",
    "h.how": "Sådan beregnes hvert tal",
    "unit.impressions": "visninger",
    "unit.impressions_per_post": "visninger pr. opslag",
    "unit.credit": "kredit (hver ansøgning tæller 1)",
    "unit.week": "ugen fra",
    "series.posts": "Opslag",
    "series.impressions": "Visninger",
    "series.applicants": "Ansøgere",
    "series.per_week": "{series} pr. uge",
    "series.week_of": "ugen fra {date}: {value}",
    "series.none": "Ingen uger i perioden.",
    "legend.rings": "Hver cirkel er en ring; tallet er dens delere.",
    "graph.aria": "Ringe i vandet som graf: hvem inspirerede hvem, ring for ring",
    "graph.none": "Ingen kollega har endnu inspireret en anden.",
    "graph.ring": "ring {ring}",
    "graph.axis": "inspireret af ringen til venstre →",
    "graph.reshare": "delte en kollegas opslag",
    "graph.engagement": "reagerede eller kommenterede",
    "graph.weight": "stregens bredde og tal: andelen af inspiration",
    "graph.more": "og {n} kolleger mere er ikke vist (de {shown}, der inspirerede flest, er vist)",
    "h.graph": "Hvem inspirerede hvem",
    "legend.graph": "Hver prik er en kollega, der delte; en streg går fra den kollega, hvis "
    "opslag de så, til dem. Fjernede medarbejdere vises som —.",
    "rings.label": "ring {ring}: {n} delere",
    "rings.company": "virksomheden",
    "rings.aria": "Ringe i vandet med antal delere",
    "col.name": "navn",
    "col.ring": "ring",
    "col.posts": "opslag",
    "col.impressions": "visninger",
    "col.applicant_credit": "ansøgerkredit",
    "col.hire_credit": "ansættelseskredit",
    "col.inspired": "inspirerede",
    "how.reach": "Rækkevidde",
    "how.reach_text": "Et opslags rækkevidde er dets seneste hentede LinkedIn-måling "
    "(visninger); summerne er over opslag offentliggjort i perioden, grupperet efter "
    "forfatterens ring.",
    "how.ratio": "Rækkeviddeforhold",
    "how.ratio_text": "Gennemsnitlige visninger pr. ambassadøropslag ÷ gennemsnitlige visninger "
    "pr. opslag på virksomhedssiden.",
    "how.emv": "Optjent medieværdi",
    "how.emv_text": "Kun medarbejderopslag: visninger ÷ 1000 × CPM + klik × CPC, med priserne "
    "fastsat i attributionstjenesten.",
    "how.rings": "Ringe",
    "how.rings_text": "Ring 1 er ambassadørerne. En kollega er i ring k+1, når vedkommende inden "
    "for 14 dage før sin første deling har delt videre eller reageret på et opslag fra en "
    "kollega i ring k; ellers er kollegaen uafhængig.",
    "how.credit": "Kredit for ansøgere",
    "how.credit_text": "Berøringer er klik på sporede links fra ansøgerens browser inden for 30 "
    "dage før ansøgningen, den linkkode, ansøgningen kom igennem, og anbefalinger. Den valgte "
    "model fordeler hver ansøgnings kredit på 1 mellem berøringerne; ansættelser krediteres "
    "som deres ansøgning.",
    "how.baseline": "Smitte målt mod en baseline",
    "how.baseline_text": "Blandt kolleger uden for programmet, som ikke havde delt før "
    "perioden, sammenlignes de eksponerede, der begyndte at dele, med det, de "
    "ikke-eksponerede kollegers tilslutning ville forudsige: baseline-justeret = observeret − "
    "forventet ved tilfældighed; løft = eksponeret andel ÷ ikke-eksponeret andel.",
    "how.sure": "Hvor sikre tallene er",
    "how.sure_text": "{level}-intervaller fra en bootstrap med fast frø (attributionstjenesten "
    "trækker periodens opslag på ny inden for hver gruppe for rækkeviddeforholdene, og de "
    "eksponerede og ikke-eksponerede kolleger for løft og baseline-justeret smitte; samme data "
    "giver samme intervaller). En effekt kan skelnes fra tilfældighed, når dens interval "
    "udelukker 'ingen effekt' (et forhold på 1×, et baseline-justeret antal på 0). Et "
    "intervals bredde falder med kvadratroden af antallet af opslag eller kolleger bag det: "
    "omkring fire gange så mange halverer det.",
    "how.origin": "Egne ord mod forberedt tekst",
    "how.origin_text": "Gennemsnitlige visninger pr. medarbejderopslag skrevet med "
    "medarbejderens egne ord ÷ gennemsnittet pr. opslag med foreslået tekst eller "
    "skabelontekst.",
    "how.drivers": "Hvad driver rækkevidden",
    "how.drivers_text": "Spearmans rangkorrelation over periodens delere mellem gennemsnitlige "
    "visninger pr. opslag og deres antal følgere (netværkets størrelse) og deres antal opslag "
    "(aktivitet); vises, når mindst fem delere kendes.",
    "link.expired": "Dette rapportlink er udløbet",
    "link.invalid": "Dette rapportlink er ikke gyldigt",
    "link.expired_text": "Links til en rapport virker kun i en begrænset tid. Bed den, der "
    "sendte det, om et nyt link.",
    "link.invalid_text": "Linket kan være ændret eller afkortet. Bed den, der sendte det, om et "
    "nyt link.",
}

CATALOGUES: dict[str, dict[str, str]] = {"en": EN, "da": DA}
