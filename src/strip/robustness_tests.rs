use super::*;

fn strip_text(body: &str) -> Stripped {
    let config = StripConfig {
        keep_removed: true,
        ..StripConfig::default()
    };
    let stripper = Stripper::new(&config, None).unwrap();
    stripper.strip(&RawDoc {
        id: "x".into(),
        format: Format::Text,
        body: body.into(),
        source_key: "s".into(),
    })
}

#[test]
fn russian_article_keeps_its_paragraphs() {
    let paras = [
        "Президент Казахстана Касым-Жомарт Токаев обратился к главам государств ОДКБ с просьбой помочь стране преодолеть террористическую угрозу.",
        "По его словам, в Алматы захвачены здания администрации и аэропорт, а в стране введён режим чрезвычайного положения до 19 января.",
        "Обращение к ОДКБ",
        "Совет коллективной безопасности организации принял решение направить в республику миротворческие силы на ограниченный срок.",
        "Министерство внутренних дел сообщило, что в ходе беспорядков погибли восемь сотрудников полиции и национальной гвардии.",
    ];
    let body = format!("Казахстан попросил помощи у ОДКБ\nГлавная\nНовости\nСпорт\nКультура\n{}\n© 2026 Все права защищены\nПодписаться на рассылку", paras.join("\n"));
    let out = strip_text(&body);
    for p in paras {
        assert!(out.text.contains(p), "dropped {p:?} from {:?}", out.text);
    }
}

#[test]
fn chinese_article_keeps_its_paragraphs() {
    let paras = [
        "哈萨克斯坦总统托卡耶夫表示，该国正面临恐怖主义威胁，并已请求集体安全条约组织提供帮助，以恢复国内的秩序与稳定。",
        "据报道，阿拉木图的机场和多座政府大楼曾被占领，当局宣布全国进入紧急状态，并实行宵禁措施直到本月十九日。",
        "集体安全条约组织随后决定向哈萨克斯坦派遣维和部队，执行为期有限的任务，保护重要的基础设施和政府机构。",
    ];
    let body = format!(
        "哈萨克斯坦请求援助\n首页\n新闻\n体育\n{}\n版权所有",
        paras.join("\n")
    );
    let out = strip_text(&body);
    for p in paras {
        assert!(out.text.contains(p), "dropped {p:?} from {:?}", out.text);
    }
}

#[test]
fn odd_inputs_do_not_panic() {
    let long = "word ".repeat(200_000);
    let inputs = [
        "",
        "\n\n\n",
        " \u{a0}\u{3000}\t",
        "\u{0}\u{1}\u{7f}\u{feff}",
        "é\u{301}\u{301}\u{301}",
        "READ MORE:",
        "🙂🙂🙂\n🙂",
        long.as_str(),
    ];
    let config = StripConfig {
        keep_removed: true,
        ..StripConfig::default()
    };
    let stripper = Stripper::new(&config, None).unwrap();
    for body in inputs {
        for format in [Format::Text, Format::Html] {
            let out = stripper.strip(&RawDoc {
                id: "x".into(),
                format,
                body: body.into(),
                source_key: String::new(),
            });
            assert!(out.text.len() <= body.len() + 1);
        }
    }
    let nested = "<div>".repeat(50_000) + "deep text";
    let out = stripper.strip(&RawDoc {
        id: "x".into(),
        format: Format::Html,
        body: nested,
        source_key: String::new(),
    });
    assert!(out.text.len() < 100);
}
